"""How the code is layered: errors at the bottom; the modules that manage runs (records, directories, summaries,
loggers, the Slurm launcher) below the model, never importing it; the key lists that make one experiment agree."""

import ast
import subprocess
import sys

import pytest

from betavae.runs import PATH_KEYS, changes, may_change
from tests.helpers import REPO, compose_config, compose_train

RUN_MANAGEMENT = ["betavae.errors", "betavae.files", "betavae.config", "betavae.cli", "betavae.plotting",
                  "betavae.runs", "betavae.loggers", "betavae.summarize", "betavae.sweep",
                  "hydra_plugins.betavae_slurm"]  # fmt: skip
MODEL = ("betavae.model", "betavae.module", "betavae.figures", "betavae.latents")


@pytest.mark.slow  # a fresh interpreter for each module: about 20 s in all
@pytest.mark.parametrize("module", RUN_MANAGEMENT)
def test_a_module_that_manages_runs_does_not_import_the_model(module):
    code = f"import sys, {module}; print(sorted(set(sys.modules) & set({MODEL!r})))"
    imported = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"


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
