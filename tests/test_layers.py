"""How the code is layered: errors at the bottom; the modules that manage runs (records, directories, summaries,
loggers, the Slurm launcher) below the model, never importing it; the key lists that make one experiment agree."""

import ast
import subprocess
import sys

import pytest

from betavae.runs import PATH_KEYS, changes, may_change
from tests.helpers import REPO, compose_config, compose_train

RUN_MANAGEMENT = ["betavae.errors", "betavae.files", "betavae.config", "betavae.cli", "betavae.registry",
                  "betavae.runs", "betavae.loggers", "betavae.summary", "betavae.summarize", "betavae.sweep",
                  "hydra_plugins.betavae_slurm"]  # fmt: skip
MODEL = ("betavae.model", "betavae.module", "betavae.figures", "betavae.latents", "betavae.suite")
PLOTTING = ("betavae.plotting", "betavae.summary.plot")  # drawn only when a summary is written
LIGHT = ["betavae.registry", "betavae.runs", "betavae.summary", "betavae.summarize", "betavae.sweep"]


@pytest.mark.slow  # a fresh interpreter for each module: about 20 s in all
@pytest.mark.parametrize("module", RUN_MANAGEMENT)
def test_a_module_that_manages_runs_imports_neither_torch_the_model_nor_plotting(module):
    code = f"import sys, {module}; print(sorted(set(sys.modules) & set({MODEL + PLOTTING!r})))"
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


@pytest.mark.slow  # a fresh interpreter for each module
@pytest.mark.parametrize("module", LIGHT)
def test_the_records_the_registry_and_the_summary_import_neither_torch_nor_matplotlib(module):
    code = f"import sys, {module}; print(sorted(set(sys.modules) & {{'torch', 'matplotlib', 'lightning'}}))"
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


def test_a_job_directory_name_longer_than_a_file_name_may_be_keeps_what_fits_and_a_hash_of_the_whole():
    from betavae.runs import NAME_MAX, job_dirname

    long = [f"model.net.hidden_dims=[{','.join(['8'] * 100)}]", "beta=0.5", "seed=1", "lr=0.001"]
    name = job_dirname(long, [])
    assert len(name.encode()) <= NAME_MAX
    assert name.startswith("beta=0.5,lr=0.001,")
    assert name == job_dirname(list(reversed(long)), [])  # the same overrides, the same name
    assert name != job_dirname([*long[:-1], "lr=0.01"], [])
    assert job_dirname(["beta=0.5", "seed=1"], []) == "beta=0.5,seed=1"  # names that fit are Hydra's, as before


def imports_of(path):
    """The betavae and callbacks modules a file imports, at its top level or in functions (`from pkg import sub`
    as both pkg and pkg.sub; the graph keeps those that are modules)."""
    tree = ast.parse(path.read_text())
    names = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    names += [f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
              for a in n.names]  # fmt: skip
    names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    return {name for name in names if name.split(".")[0] in ("betavae", "callbacks")}


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_the_house_has_no_import_cycle():
    graph = {module_name(p): imports_of(p) for folder in ("betavae", "callbacks")
             for p in (REPO / folder).rglob("*.py")}  # fmt: skip
    graph = {m: {i for i in deps if i in graph and i != m and not m.startswith(f"{i}.")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(module, path):
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                raise AssertionError(" -> ".join([*path, module, dep]))
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_the_errors_module_imports_nothing_of_betavae():
    tree = ast.parse((REPO / "betavae" / "errors.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [name for name in imported if name and name.startswith("betavae")] == []


def test_every_path_key_but_hydras_directories_is_left_out_of_job_directory_names():
    excluded = compose_config("train", hydra=True).hydra.job.config.override_dirname.exclude_keys
    assert [key for key in PATH_KEYS if not key.startswith("hydra.") and key not in excluded] == []


def test_every_key_left_out_of_job_directory_names_may_change_when_a_job_continues():
    """A key left out of the names runs in the same directory when it changes, so continuing there must allow it:
    a config key directly, a group (trainer, logger) through every change each of its options makes."""
    base = compose_train()
    allowed = base.continue_may_change
    excluded = compose_config("train", hydra=True).hydra.job.config.override_dirname.exclude_keys
    groups = {path.name for path in (REPO / "conf").iterdir() if path.is_dir()}
    for key in excluded:
        if key not in groups:
            assert may_change(key, allowed), key
            continue
        for option in sorted((REPO / "conf" / key).glob("*.yaml")):
            changed = changes(base, compose_train(f"{key}={option.stem}"))
            assert [k for k in changed if not may_change(k, allowed)] == [], f"{key}={option.stem}"
