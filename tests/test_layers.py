"""How the code is layered: the folders are floors (base at the bottom, the doors at the top), no module imports
from a floor above its own and none is in a cycle; the modules that manage runs (records, directories, summaries,
loggers, the Slurm launcher) never import the model; the key lists that make one experiment agree."""

import ast
import json
import subprocess
import sys

import pytest

from betavae.base.cli import PATH_KEYS
from betavae.metrics import registry
from betavae.metrics.registry import Scope
from betavae.runs.continuation import changes, continuable, may_change
from betavae.runs.names import job_dirname
from tests.helpers import REPO, compose_config, compose_train

RUNS = ["betavae.runs.layout", "betavae.runs.names", "betavae.runs.continuation", "betavae.runs.sweep",
        "betavae.runs.plan"]  # fmt: skip
RUN_MANAGEMENT = ["betavae.base.errors", "betavae.base.files", "betavae.base.config", "betavae.base.cli",
                  "betavae.metrics.registry", *RUNS, "betavae.loggers.job", "betavae.summary",
                  "betavae.summarize", "betavae.summary.callback", "hydra_plugins.betavae_slurm"]  # fmt: skip
MODEL = ("betavae.model.networks", "betavae.model.module", "betavae.figures.draw", "betavae.metrics.latents",
         "betavae.metrics.suite")  # fmt: skip
PLOTTING = ("betavae.base.plotting", "betavae.summary.plot")  # drawn only when a summary is written
LIGHT = ["betavae.metrics.registry", *RUNS, "betavae.summary", "betavae.summarize", "betavae.summary.callback"]
# The floors, bottom first: a module imports from its own floor or those below. The registry declares the metrics
# (it imports nothing), so the run records and the summaries below the scorers can read it.
FLOORS = [("betavae.base",), ("betavae.metrics.registry",), ("betavae.runs",), ("betavae.data",), ("betavae.model",),
          ("betavae.metrics",), ("betavae.figures",), ("betavae.loggers",), ("betavae.callbacks",),
          ("betavae.summary",), ("betavae.train", "betavae.evaluate", "betavae.summarize", "betavae.export",
                                 "betavae.api", "hydra_plugins")]  # fmt: skip


def imported_with(modules: list[str], watched: set[str]) -> dict[str, list[str]]:
    """For each of ``modules``, imported in turn into one fresh interpreter, the ``watched`` modules that came with
    it (those an earlier one brought are already there: the first module to bring one in is the one named)."""
    code = ("import importlib, json, sys\n"
            f"watched, found = {sorted(watched)!r}, {{}}\n"
            f"for name in {modules!r}:\n"
            "    before = set(sys.modules)\n"
            "    importlib.import_module(name)\n"
            "    found[name] = sorted(set(watched) & (set(sys.modules) - before))\n"
            "print(json.dumps(found))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@pytest.mark.slow  # a fresh interpreter, which the first module that imports Lightning takes 4 s to import
def test_the_modules_that_manage_runs_import_neither_the_model_nor_plotting():
    assert imported_with(RUN_MANAGEMENT, set(MODEL + PLOTTING)) == {module: [] for module in RUN_MANAGEMENT}


@pytest.mark.slow  # a fresh interpreter
def test_the_records_the_registry_and_the_summary_import_neither_torch_nor_matplotlib():
    assert imported_with(LIGHT, {"torch", "matplotlib", "lightning"}) == {module: [] for module in LIGHT}


def test_a_job_directory_name_longer_than_a_file_name_may_be_keeps_what_fits_and_a_hash_of_the_whole():
    from betavae.runs.names import NAME_MAX, job_dirname

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
    return {name for name in names if name.split(".")[0] in ("betavae", "hydra_plugins")}


def module_name(path):
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """Every module of the package and the Slurm plugin, with the modules of ours it imports."""
    graph = {module_name(p): imports_of(p) for folder in ("betavae", "hydra_plugins")
             for p in (REPO / folder).rglob("*.py")}  # fmt: skip
    return {m: {i for i in deps if i in graph and i != m and not m.startswith(f"{i}.")} for m, deps in graph.items()}


def floor(module):
    """The index in FLOORS of a module's floor: its longest matching prefix; None for the package's own docstring."""
    found = [(len(p), i) for i, prefixes in enumerate(FLOORS) for p in prefixes
             if module == p or module.startswith(f"{p}.")]  # fmt: skip
    return max(found)[1] if found else None


def test_every_module_stands_on_a_floor_and_imports_nothing_from_a_floor_above():
    graph = import_graph()
    only_docstrings = {module_name(p) for p in (REPO / "betavae").rglob("__init__.py")
                       if all(isinstance(n, ast.Expr) for n in ast.parse(p.read_text()).body)}  # fmt: skip
    graph = {m: deps - only_docstrings for m, deps in graph.items()}  # `from betavae.metrics import registry`
    assert [m for m in graph if floor(m) is None] == ["betavae"]
    upward = [f"{m} -> {dep}" for m, deps in graph.items() for dep in deps
              if m != "betavae" and floor(dep) is not None and floor(dep) > floor(m)]  # fmt: skip
    assert upward == []


def test_the_package_top_holds_only_the_doors():
    top = {p.stem for p in (REPO / "betavae").glob("*.py")}
    assert top == {"__init__", "train", "evaluate", "summarize", "export", "api"}


def test_the_house_has_no_import_cycle():
    graph = import_graph()
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
    tree = ast.parse((REPO / "betavae" / "base" / "errors.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert [name for name in imported if name and name.startswith("betavae")] == []


def test_every_path_key_but_hydras_directories_and_the_summarys_settings_are_left_out_of_job_directory_names():
    given = [f"{key}=/x" for key in PATH_KEYS if not key.startswith("hydra.")]
    summary = [f"{key}.seed=3" for key in registry.settings_keys(Scope.ACROSS_RUNS)]
    assert job_dirname([*given, *summary, "beta=0.5"], []) == "beta=0.5"


def test_every_key_left_out_of_job_directory_names_may_change_when_a_job_continues():
    """A key left out of the names runs in the same directory when it changes, so continuing there must allow it:
    a config key directly, a group (trainer, logger) through every change each of its options makes."""
    base = compose_train()
    allowed = continuable(base)
    excluded = [*compose_config("train", hydra=True).hydra.job.config.override_dirname.exclude_keys,
                *(key for key in PATH_KEYS if not key.startswith("hydra.")),
                *registry.settings_keys(Scope.ACROSS_RUNS)]  # fmt: skip
    groups = {path.name for path in (REPO / "betavae" / "conf").iterdir() if path.is_dir()}
    for key in excluded:
        if key.endswith(".*"):
            continue  # what is under a key the list names too
        if key not in groups:
            assert may_change(key, allowed), key
            continue
        for option in sorted((REPO / "betavae" / "conf" / key).glob("*.yaml")):
            changed = changes(base, compose_train(f"{key}={option.stem}"))
            assert [k for k in changed if not may_change(k, allowed)] == [], f"{key}={option.stem}"
