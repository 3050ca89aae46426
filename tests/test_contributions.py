"""What a contributor adds reaches every door with no other change, as docs/configuration.md (Layout) says: a data
set (tests/rgb_shapes.py and its YAML), a per-run metric family with settings and an across-runs score
(tests/toy_metric.py and tests/conf/toy/default.yaml). Two jobs train on the colour data in process, one continues
with a changed toy setting, evaluate scores with the settings the run recorded, and the summary has every score."""

import json

import pytest

from betavae.base.config import composed
from betavae.evaluate import evaluate
from betavae.model.run import load_run
from betavae.summarize import summarize
from betavae.train import job_config, train
from tests import toy_metric
from tests.helpers import EVALUATE_FEW, LATENT_STATS_ONLY, TESTS_CONF, limits

pytestmark = pytest.mark.slow
SMALL = [TESTS_CONF, "data=rgb_shapes", "+toy=default", "model.net.latent_dim=4", "trainer.max_epochs=1",
         *limits(train=4, val=1, test=1), *LATENT_STATS_ONLY, "disentanglement=none"]  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    """The toy families registered in this process, and removed after."""
    toy_metric.register()
    yield
    toy_metric.unregister()


def toy_value(job, power):
    """test/toy recomputed from the job's tested checkpoint: mean |μ|^power over its test images."""
    run = load_run(job)
    return float(run.encode(run.images("test")).mu.abs().pow(power).mean())


def test_a_toy_data_set_metric_and_across_runs_score_reach_training_continuation_evaluate_and_the_summary(
    toy, tmp_path, real_data_dir
):
    sweep = tmp_path / "sweep"
    for beta in (0.5, 2.0):
        record = train(job_config([f"beta={beta}", *SMALL], sweep / f"beta={beta}"))
        assert record.finished and record.metrics["test/toy"] == pytest.approx(toy_value(sweep / f"beta={beta}", 2.0))
    job = sweep / "beta=0.5"
    continued = train(job_config(["beta=0.5", *SMALL, "trainer.max_epochs=2", "toy.power=3"], job))  # its settings
    assert continued.epochs == 2
    assert continued.metrics["test/toy"] == pytest.approx(toy_value(job, 3.0))

    evaluated = evaluate(composed("evaluate", [f"run_dir={job}", TESTS_CONF, "+toy=default", *EVALUATE_FEW,
                                               "disentanglement=none"]))  # fmt: skip  # DCI: 17 s, not what it tests
    assert evaluated[job]["toy"] == {"power": 3.0}  # the run's recorded settings, over evaluate's default of 2
    assert json.loads((job / "evaluation.json").read_text())["test/toy"] == evaluated[job]["test/toy"]

    text, jobs = summarize(composed("summarize", [f"sweep_dir={sweep}", "udr=none"]))
    assert "| toy score |" in text.splitlines()[2] and "## Toy gap" in text
    gaps = {j["job"]: j["toy_gap"] for j in jobs}
    assert gaps == {"beta=0.5": pytest.approx(0.0), "beta=2.0": pytest.approx(0.0)}  # one job per group
    summary = json.loads((sweep / "summary.json").read_text())
    assert summary["toy_gap"] == {"groups": 2}
    assert [group["test/toy"] for group in summary["groups"]] == [  # evaluate's over training's, as for every score
        evaluated[job]["test/toy"],
        pytest.approx(toy_value(sweep / "beta=2.0", 2.0)),
    ]
