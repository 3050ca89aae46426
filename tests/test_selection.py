"""Unsupervised model selection in real sweeps: after a two-seed sweep on the shapes data, the summary and
selection.npz carry every job's UDR and label-free scores, recomputable from the saved codes (Fashion-MNIST's:
tests/test_summary.py); a group with one seed gets one line and the summary is still written."""

import json
import shutil

import numpy as np
import pytest
import torch

from betavae.base.config import composed
from betavae.metrics import udr
from betavae.metrics.selection import ModelSelection, read_selection
from betavae.runs.layout import Status, SweepDir
from betavae.runs.sweep import Job
from betavae.summarize import summarize
from tests.helpers import WITHOUT_FIGURES, run_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """Two seeds on the small shapes grid (its 200 test images: UDR takes all of them), no other score."""
    root = tmp_path_factory.mktemp("shapes") / "sweep"
    run_module("betavae.train", "-m", "seed=1,2", "experiment=shapes_smoke", *WITHOUT_FIGURES, "disentanglement=none",
               f"hydra.sweep.dir={root}")  # fmt: skip
    return root


def test_a_two_seed_sweep_saves_its_codes_and_every_score_in_selection_npz(shapes):
    root, images, latents = shapes, 200, 4  # the grid's 200 test images, UDR takes all of them
    saved = read_selection(root)
    assert sorted(saved["jobs"].tolist()) == sorted(d.name for d in root.iterdir() if d.is_dir())
    assert saved["codes"].shape == (2, images, latents)
    assert saved["kl"].shape == (2, latents)
    assert saved["image_indices"].shape == (2, images)
    assert saved["pairwise_lasso"].shape == saved["pairwise_spearman"].shape == (2, 2)
    for name in ("udr_lasso", "udr_spearman"):
        assert ((saved[name] >= 0) & (saved[name] <= 1)).all(), name
    assert json.loads(str(saved["settings"]))["kl_threshold"] == 0.01


def test_the_saved_codes_give_the_saved_scores_again(shapes):
    saved = read_selection(shapes)
    for matrix in ("lasso", "spearman"):
        pairwise = udr.pairwise_scores(saved["codes"], saved["kl"], matrix)
        assert np.allclose(pairwise, saved[f"pairwise_{matrix}"], equal_nan=True)
        assert np.allclose(udr.udr(pairwise), saved[f"udr_{matrix}"])
    assert np.allclose([udr.gaussian_total_correlation(c) for c in saved["codes"]], saved["gaussian_tc"])


def test_the_summary_carries_each_jobs_udr_its_groups_mean_and_the_seed_it_keeps(shapes):
    root = shapes
    summary = json.loads((root / "summary.json").read_text())
    saved = read_selection(root)
    jobs = {j["job"]: j for j in summary["jobs"]}
    for k, name in enumerate(saved["jobs"]):
        assert jobs[name]["udr_lasso"] == pytest.approx(saved["udr_lasso"][k])
        assert jobs[name]["mutual_info"] == pytest.approx(saved["mutual_info"][k])
    (group,) = summary["groups"]
    assert group["udr_lasso"] == pytest.approx(float(np.mean(saved["udr_lasso"])))
    (kept,) = summary["udr"]["keep"].values()
    assert kept["seed"] == jobs[saved["jobs"][int(np.argmax(saved["udr_lasso"]))]]["seed"]
    table = (root / "summary.md").read_text()
    assert "| UDR (Lasso) | UDR (Spearman) |" in table
    assert "## Unsupervised model selection (UDR, no labels)" in table
    assert "**kept**" in table


def test_a_group_with_one_finished_seed_gets_one_line_and_the_summary_is_still_written(shapes, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(shapes, copy)
    (next(copy.glob("*seed=2*")) / "metrics.json").unlink()
    (copy / "selection.npz").unlink()
    result = run_module("betavae.summarize", f"sweep_dir={copy}")
    line = "UDR: group (all jobs) has one seed (1); UDR compares seeds and needs two or more"
    assert line in result.stdout + result.stderr
    assert line in (copy / "summary.md").read_text()
    assert not (copy / "selection.npz").exists()
    assert "udr_lasso" not in json.loads((copy / "summary.json").read_text())["groups"][0]


def truncate_best_checkpoint(job):
    """Cut the job's best checkpoint to its first 100 bytes, as a killed copy would leave it."""
    best = job / json.loads((job / "metrics.json").read_text())["best_checkpoint"]
    best.write_bytes(best.read_bytes()[:100])


def test_a_seed_that_cannot_be_read_is_left_out_of_udr_alone_and_its_group_keeps_the_others(shapes, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(shapes, copy)
    third = copy / "seed=3,experiment=shapes_smoke"
    shutil.copytree(next(copy.glob("*seed=2*")), third)
    for name in ("config.yaml", "overrides.yaml"):
        path = third / ".hydra" / name
        path.write_text(path.read_text().replace("seed=2", "seed=3").replace("seed: 2", "seed: 3"))
    truncate_best_checkpoint(third)
    text, jobs = summarize(composed("summarize", [f"sweep_dir={copy}"]))
    assert f"- UDR: {third.name} left out: " in text
    udr_of = {j["seed"]: j.get("udr_lasso") for j in jobs}
    assert udr_of[3] is None and udr_of[1] is not None and udr_of[2] is not None
    assert sorted(read_selection(copy)["jobs"].tolist()) == sorted(j["job"] for j in jobs if j["seed"] != 3)


def test_when_every_group_is_left_out_of_udr_the_summary_is_written_with_the_line_why(shapes, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(shapes, copy)
    truncate_best_checkpoint(next(copy.glob("*seed=2*")))
    text, _ = summarize(composed("summarize", [f"sweep_dir={copy}"]))
    assert "- UDR: group (all jobs) left out: 1 of its 2 seeds could be read; UDR compares two or more" in text
    assert (copy / "summary.md").read_text() == text
    assert not (copy / "selection.npz").exists()  # the earlier sweep's, gone with the UDR it held


def test_a_model_with_no_active_latent_is_scored_zero_with_a_line_saying_why(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.uniform(size=(1000, 4))
    scorer = ModelSelection()
    three = np.stack([codes, codes[:, ::-1], np.zeros((1000, 4))])
    scorer.representations = lambda jobs, notes: ([0, 1, 2], three, np.array([[1.0] * 4, [1.0] * 4, [0.0] * 4]),
                                                  np.arange(1000))  # fmt: skip
    jobs: list[Job] = [{"job": f"seed={s}", "group": "beta=1", "seed": s, "status": Status.OK} for s in (1, 2, 3)]
    found = scorer.score(SweepDir(tmp_path), jobs)
    assert found.per_job["seed=3"]["udr_lasso"] == 0.0
    assert found.per_job["seed=1"]["udr_lasso"] > 0.4
    assert any(note.startswith("UDR: seed=3 has no active latent (every latent's mean KL ≤ 0.01 nats)")
               for note in found.notes)  # fmt: skip


def set_posterior_means(job, value):
    """Make the job's best checkpoint give every image the same posterior means (``value``: 0, all weights of the
    means' rows zero: the biases alone) or non-finite ones (NaN weights)."""
    best = job / json.loads((job / "metrics.json").read_text())["best_checkpoint"]
    checkpoint = torch.load(best, weights_only=True)
    state = checkpoint["state_dict"]
    last = [k for k, v in state.items() if k.startswith("net.encoder") and k.endswith("weight") and v.ndim == 2][-1]
    state[last][: state[last].shape[0] // 2] = value  # the rows of μ (q's output is μ then log σ²)
    torch.save(checkpoint, best)


@pytest.mark.parametrize("value", [0.0, float("nan")])
def test_a_seed_with_constant_or_non_finite_codes_gets_a_line_and_the_summary_is_written_whole(shapes, tmp_path, value):
    copy = tmp_path / "sweep"
    shutil.copytree(shapes, copy)
    job = next(copy.glob("*seed=2*"))
    set_posterior_means(job, value)
    text, jobs = summarize(composed("summarize", [f"sweep_dir={copy}"]))
    if np.isnan(value):
        assert f"- UDR: {job.name} left out: its posterior means are not finite" in text
    else:
        assert f"- UDR: {job.name}: no Gaussian TC of μ: a latent's mean is the same for every image" in text
        assert "gaussian_tc" not in next(j for j in jobs if j["job"] == job.name)
    assert json.loads((copy / "summary.json").read_text())["jobs"]  # strict JSON, every file written
    assert (copy / "summary.md").read_text() == text


def test_summarize_takes_the_udr_settings_the_sweep_ran_with_and_its_own_overrides_on_top(shapes, tmp_path, caplog):
    copy = tmp_path / "sweep"
    shutil.copytree(shapes, copy)
    plan = copy / "multirun.yaml"
    plan.write_text(plan.read_text().replace("num_images: 10000", "num_images: 50"))  # a sweep run with 50
    with caplog.at_level("INFO", logger="betavae.summarize"):
        summarize(composed("summarize", [f"sweep_dir={copy}"]))
    assert read_selection(copy)["image_indices"].shape == (2, 50)
    assert "UDR settings: the sweep's" in caplog.text
    summarize(composed("summarize", [f"sweep_dir={copy}", "udr.num_images=80"]), ["udr.num_images=80"])
    assert read_selection(copy)["image_indices"].shape == (2, 80)
