"""The metric registry is the one list of metrics: no key is spelled elsewhere in the code, every scorer gives only
the keys its entry declares, and a family added to it (a toy metric) reaches metrics.json, every summary file and
the plot with no other change, through a real Hydra multirun."""

import ast
import csv
import json
import re

import numpy as np
import pytest

from betavae.metrics import registry
from betavae.metrics.across import SweepScorer
from betavae.metrics.registry import Scope
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.metrics.suite import SCORERS, SWEEP_SCORERS, Suite
from betavae.runs.layout import Status
from tests import toy_metric
from tests.helpers import LATENT_STATS_ONLY, REPO, TESTS_CONF, limits, run_module, strict_json

CODE = [path for folder in ("betavae", "hydra_plugins", "benchmarks", "scripts")
        for path in sorted((REPO / folder).rglob("*.py")) if path.name != "registry.py"]  # fmt: skip


def string_literals(path):
    """Every string constant of a Python file's code, its docstrings left out (they are documentation)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)}  # fmt: skip
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]  # fmt: skip


def test_no_metric_key_is_spelled_anywhere_in_the_code_but_its_registry_entry():
    keys = {m.key for m in registry.metrics() if "/" in m.key}
    found = {f"{path.relative_to(REPO)}: {text}" for path in CODE for text in string_literals(path)
             if any(key in text for key in keys)}  # fmt: skip
    assert found == set()


def test_every_scorer_is_of_its_familys_scope_and_every_family_but_trainings_own_has_one():
    per_run, across = SCORERS, SWEEP_SCORERS
    assert all(issubclass(cls, Scorer) and registry.FAMILIES[name].scope is Scope.PER_RUN
               for name, cls in per_run.items())  # fmt: skip
    assert all(issubclass(cls, SweepScorer) and registry.FAMILIES[name].scope is Scope.ACROSS_RUNS
               for name, cls in across.items())  # fmt: skip
    assert [f.name for f in registry.families() if f.name not in {*per_run, *across}] == ["elbo", "curves", "record"]


def test_a_family_whose_name_or_key_is_taken_is_refused():
    with pytest.raises(ValueError, match="'fid': its name or a key of it is registered already"):
        registry.register(registry.Family("fid", "FID again", ()))
    with pytest.raises(ValueError, match="'mine'"):
        registry.register(registry.Family("mine", "mine", (registry.Metric("test/mig", "MIG"),)))
    assert "mine" not in registry.FAMILIES


def test_a_scorer_giving_a_key_its_entry_does_not_declare_is_a_bug_said_in_one_line():
    class Stray(Scorer):
        def evaluate(self, model, data, limit, label):
            return Evaluation({"mig": 1.0, "toy": 2.0})

    from betavae.data.shapes import ShapesDataModule

    data = ShapesDataModule(image_size=8, positions=4, scales=1, orientations=1, val_size=5, test_size=10)
    with pytest.raises(
        RuntimeError, match=r"^metric family 'disentanglement' gave test/toy, which betavae\.metrics\.registry"
    ):
        Suite({"disentanglement": Stray()}).evaluate(None, data)


def test_the_summary_columns_paired_metrics_and_panels_come_from_the_registry():
    assert [m.key for m in registry.columns()][:3] == [registry.DISTORTION, registry.RATE, "test/elbo"]
    assert registry.metric("test/mig").paired
    assert not registry.metric("test/nll_iw_se").paired
    titles = [panel.title for panel, _ in registry.panels()]
    assert titles == ["where the KL goes", "generation quality", "disentanglement", "disentanglement, more scores",
                      "sample efficiency", "unsupervised model selection"]  # fmt: skip
    more = dict(registry.panels())[registry.MORE_SCORES]  # three families drawn in one panel
    assert list(more.values()) == ["modularity", "explicitness", "IRS", "InfoM", "InfoC", "InfoE"]


@pytest.fixture
def toy():
    """The toy family registered in this process too (the summary's plot reads it), and removed after."""
    toy_metric.register()
    yield toy_metric.TOY
    toy_metric.unregister()


@pytest.mark.slow
def test_a_family_added_to_the_registry_reaches_metrics_json_every_summary_file_and_the_plot(toy, tmp_path,
                                                                                          real_data_dir):  # fmt: skip
    root = tmp_path / "sweep"
    run_module("tests.toy_metric", "-m", "beta=0.5,2.0", "trainer.max_epochs=1", *limits(train=5, val=1, test=1),
               *LATENT_STATS_ONLY, TESTS_CONF, "+toy=default", f"hydra.sweep.dir={root}")  # fmt: skip
    jobs = [job for job in root.iterdir() if job.is_dir()]
    values = {
        float(re.search(r"(?:^|,)beta=([\d.]+)", job.name).group(1)): strict_json(job / "metrics.json")["test/toy"]
        for job in jobs
    }
    assert sorted(values) == [0.5, 2.0]
    assert all(np.isfinite(v) and v >= 0 for v in values.values())
    table = (root / "summary.md").read_text()
    assert "| toy score |" in table.splitlines()[2]
    assert f"| {values[0.5]:.4f} |" in next(line for line in table.splitlines() if line.startswith("| beta=0.5 |"))
    with (root / "summary.csv").open() as f:
        assert [float(r["test/toy"]) for r in csv.DictReader(f)] == pytest.approx([values[0.5], values[2.0]])
    groups = json.loads((root / "summary.json").read_text())["groups"]
    assert [g["test/toy"] for g in groups] == pytest.approx([values[0.5], values[2.0]])
    from betavae.summary.plot import tradeoff_figure

    figure = tradeoff_figure([{**g, "status": Status(g["status"])} for g in groups], "beta")
    panel = next(ax for ax in figure.axes if ax.get_title() == "toy panel")
    assert panel.get_lines()[0].get_xydata().tolist() == [[0.5, values[0.5]], [2.0, values[2.0]]]
