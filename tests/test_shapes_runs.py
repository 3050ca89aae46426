"""Disentanglement in real runs: a β sweep on the shapes data logs every score at test time, saves the inputs that
give the code-based ones again, draws the factor figures, leaves out what has no meaning there, and evaluate and
the summary report the same scores; asking for them on Fashion-MNIST is refused in one line."""

import json
import shutil

import numpy as np
import pytest

from betavae.export import export_run
from betavae.metrics.disentanglement import CODE_ARRAYS, infoc_note, scores_from_codes
from tests.helpers import limits, run_module, scalars, strict_json, train_job

pytestmark = pytest.mark.slow
SCORES = ["test/mig", "test/dci_disentanglement", "test/dci_completeness", "test/dci_informativeness", "test/sap",
          "test/factorvae_score", "test/betavae_score", "test/modularity", "test/explicitness", "test/irs",
          "test/infomec_m", "test/infomec_c", "test/infomec_e"]  # fmt: skip
# the smoke's 500 codes reach 10 and 100 (its families leave them out: 7 s a job of cross-validated fits)
DOWNSTREAM = ["test/downstream_lr_10", "test/downstream_lr_100", "test/downstream_gbt_10", "test/downstream_gbt_100"]
SMALL_SHAPES = "experiment=shapes_smoke"  # 1,728 images of 16×16, one epoch of 10 batches, fewer codes scored


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2-β sweep on a small shapes grid, one epoch of 10 batches, every callback and the smoke's scores on;
    {beta: job directory}."""
    root = tmp_path_factory.mktemp("shapes") / "sweep"
    run_module("betavae.train", "-m", "beta=1,8", SMALL_SHAPES, f"hydra.sweep.dir={root}")
    return {float(d.name.split(",")[0].split("=")[1]): d for d in root.glob("beta=*")}


def test_a_shapes_run_logs_every_score_and_leaves_out_fid_and_the_probe_saying_so(sweep):
    job = sweep[8.0]
    metrics, series = strict_json(job / "metrics.json"), scalars(job)[1]
    for key in SCORES:
        assert -1e-9 <= metrics[key] <= 1, key
        assert series[key][-1].value == pytest.approx(metrics[key], rel=1e-6), key
    assert "test/fid" not in metrics
    assert "test/probe_accuracy" not in metrics
    log = (job / "train.log").read_text()
    assert "No FID: data=shapes: fid=fashion's feature network was trained on Fashion-MNIST alone" in log
    assert "No linear probe (test/probe_accuracy): data=shapes has no classes" in log
    for name in ("factor_information", "latent_traversal", "reconstructions", "interpolation", "latent_evolution"):
        assert (job / "figures" / f"{name}.png").is_file(), name


def test_a_shapes_run_logs_the_downstream_accuracies_its_codes_reach_and_names_the_sizes_they_do_not(tmp_path):
    run = tmp_path / "run"
    train_job(run, SMALL_SHAPES, "disentanglement.families=[sample_efficiency]")
    metrics, series = strict_json(run / "metrics.json"), scalars(run)[1]
    for key in DOWNSTREAM:
        assert 0 <= metrics[key] <= 1, key
        assert series[key][-1].value == pytest.approx(metrics[key], rel=1e-6), key
    assert "test/sample_efficiency" not in metrics and "test/downstream_lr_1000" not in metrics
    assert "test/mig" not in metrics  # the one family asked for
    assert (
        "downstream sample efficiency: disentanglement.num_train=500 codes reach 10, 100 of its sizes, not 1,000, "
        "10,000; the ratio of 100 to 10,000 needs num_train >= 10,000"
    ) in (run / "train.log").read_text()


def test_the_saved_codes_and_factors_give_the_logged_scores_again(sweep):
    job = sweep[8.0]
    saved = np.load(job / "disentanglement.npz")
    assert saved["codes_train"].shape == (500, 4)
    assert saved["factors_train"].shape == (500, 5)
    assert saved["codes_test"].shape == (300, 4)
    assert saved["factors_test"].shape == (300, 5)
    assert saved["factor_names"].tolist() == ["shape", "scale", "orientation", "x", "y"]
    settings = json.loads(str(saved["settings"]))
    again = scores_from_codes(*(saved[key] for key in CODE_ARRAYS), settings["bins"], settings["seed"],
                              families=settings["families"])  # fmt: skip
    metrics = strict_json(job / "metrics.json")
    assert {f"test/{k}": v for k, v in again.items()} == pytest.approx({f"test/{k}": metrics[f"test/{k}"]
                                                                         for k in again}, rel=1e-6)  # fmt: skip


def test_evaluate_scores_with_the_settings_the_run_was_trained_with_saying_so_and_gives_its_scores(sweep):
    job = sweep[1.0]
    result = run_module("betavae.evaluate", f"run_dir={job}", "eval.limit=50", "eval.iw_samples=5",
                        "eval.figures=false")  # fmt: skip  # no disentanglement.*: experiment=shapes_smoke's stand
    evaluation, metrics = strict_json(job / "evaluation.json"), strict_json(job / "metrics.json")
    assert {k: evaluation[k] for k in SCORES} == pytest.approx({k: metrics[k] for k in SCORES}, rel=1e-6)
    assert evaluation["disentanglement"]["num_train"] == 500  # the run's, not evaluate's default 10,000
    assert f"{job}: disentanglement settings: the run's" in result.stdout
    assert "test/fid" not in evaluation
    table = (job.parent / "summary.md").read_text()
    assert "| MIG | DCI disentanglement | DCI completeness | DCI informativeness | SAP |" in table
    paired = json.loads((job.parent / "summary.json").read_text())["paired"]
    assert paired == []  # one seed each: no paired differences


def test_evaluates_overrides_go_over_the_runs_recorded_settings_and_are_named_once(sweep, tmp_path):
    job = tmp_path / "job"
    shutil.copytree(sweep[8.0], job)
    result = run_module("betavae.evaluate", f"run_dir={job}", "eval.limit=50", "eval.iw_samples=5",
                        "eval.figures=false", "disentanglement.bins=10", "disentanglement.families=[irs]")  # fmt: skip
    said = f"{job}: disentanglement settings: the run's, with disentanglement.bins=10 disentanglement.families=[irs]"
    assert result.stdout.count(said) == 1  # IRS reads the bins, without DCI's trees
    settings = strict_json(job / "evaluation.json")["disentanglement"]
    assert (settings["bins"], settings["num_train"]) == (10, 500)
    assert json.loads(str(np.load(job / "disentanglement.npz")["settings"]))["bins"] == 10


def test_means_and_sampled_codes_are_scored_in_one_evaluate_and_told_apart_in_every_key_file_and_column(
    sweep, tmp_path
):
    from betavae.base.config import composed
    from betavae.evaluate import evaluate
    from betavae.summarize import summarize

    job = tmp_path / "sweep" / sweep[8.0].name
    shutil.copytree(sweep[8.0], job)
    both = ["disentanglement.families=[irs,infomec]", "disentanglement.representation=[mean,sampled]"]
    evaluate(composed("evaluate", [f"run_dir={job}", "eval.limit=50", "eval.iw_samples=5", "eval.figures=false",
                                   *both]), both)  # fmt: skip  # the command line's, over the run's recorded settings
    evaluation = strict_json(job / "evaluation.json")
    keys = ["test/irs", "test/infomec_m", "test/infomec_e"]
    assert all(isinstance(evaluation[k], float) and isinstance(evaluation[f"{k}_sampled"], float) for k in keys)
    assert evaluation["test/irs"] == pytest.approx(strict_json(job / "metrics.json")["test/irs"], rel=1e-6)
    saved = np.load(job / "disentanglement.npz")
    assert saved["codes_train_sampled"].shape == saved["codes_train"].shape == (500, 4)
    assert not np.array_equal(saved["codes_train_sampled"], saved["codes_train"])
    text, _ = summarize(composed("summarize", [f"sweep_dir={job.parent}"]))
    assert "| IRS | " in text and "| IRS (sampled) | " in text


def test_asking_for_disentanglement_scores_of_fashion_mnist_is_refused_in_one_line(tmp_path, real_data_dir):
    refused = train_job(tmp_path / "run", "disentanglement.compute=true", check=False)
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines()[-1] == (
        "Invalid config: disentanglement.compute=true: data=fashion_mnist has no ground-truth factors of variation "
        "to score against (data=shapes has)"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_fashion_mnist_run_has_no_disentanglement_scores_and_says_so(tmp_path, real_data_dir):
    run = tmp_path / "run"
    train_job(run, "trainer.max_epochs=1", *limits(train=3), "disentanglement=default")
    assert not any(key in strict_json(run / "metrics.json") for key in SCORES)
    assert (
        "No disentanglement scores: data=fashion_mnist has no ground-truth factors" in (run / "train.log").read_text()
    )
    assert not (run / "disentanglement.npz").exists()
    refused = run_module("betavae.evaluate", f"run_dir={run}", "eval.limit=20", "eval.iw_samples=5",
                         "eval.figures=false", "fid=none", "disentanglement.compute=true", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1].endswith("(disentanglement.compute=true: data=fashion_mnist has no "
                                                            "ground-truth factors of variation to score against "
                                                            "(data=shapes has))")  # fmt: skip
    assert not (run / "evaluation.json").exists()


def test_an_experiment_that_tunes_a_callback_runs_with_callbacks_none_leaving_that_callback_out(tmp_path):
    run = tmp_path / "run"
    result = train_job(run, SMALL_SHAPES, "callbacks=none", "disentanglement=none")  # train_job: also fid=none
    assert strict_json(run / "metrics.json")["status"] == "ok"
    assert "callbacks.latent_evolution is set, but callbacks=... does not choose it: left out" in result.stdout + (
        run / "train.log").read_text()  # fmt: skip


def test_a_one_latent_code_is_flagged_in_its_record_and_the_summary_and_never_outranks_for_a_gap(tmp_path):
    root = tmp_path / "sweep"
    run_module("betavae.train", "-m", SMALL_SHAPES, "model.net.latent_dim=1,4", "callbacks=none", "fid=none",
               f"hydra.sweep.dir={root}")  # fmt: skip
    one = strict_json(next(root.glob("*latent_dim=1*")) / "metrics.json")
    note, *infoc = one["notes"]
    assert infoc == ([infoc_note()] if "test/infomec_c" not in one else [])  # one latent: InfoC has no spread
    assert note.startswith("disentanglement scores of a code with")
    if "no active latent" in note:
        assert (one["test/mig"], one["test/sap"]) == (0, 0)
    assert strict_json(next(root.glob("*latent_dim=4*")) / "metrics.json")["notes"] == []
    summary = (root / "summary.md").read_text()
    assert f"## Notes\n\n- {next(root.glob('*latent_dim=1*')).name}: {note}" in summary
    card = (export_run(next(root.glob("*latent_dim=1*")), tmp_path / "export") / "README.md").read_text()
    assert f"## Notes\n\n- {note}\n" in card  # the exported model carries the note beside its scores
    assert (
        "## Notes" not in (export_run(next(root.glob("*latent_dim=4*")), tmp_path / "four") / "README.md").read_text()
    )
