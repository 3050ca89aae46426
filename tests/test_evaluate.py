"""Sweep summaries over seeds, failed jobs, `python -m betavae.evaluate`, and safe checkpoint loading."""

import json
import pickle
import shutil
import statistics

import pytest
import torch
from hydra.utils import instantiate

from betavae.api import load_run
from betavae.bounds import elbo, iw_log_likelihood
from betavae.checkpoints import load_checkpoint
from betavae.errors import RunError
from betavae.latents import active_units, encode_all, kl_decomposition
from tests.helpers import WITHOUT_FIGURES, Payload, limits, run_module

pytestmark = pytest.mark.slow

ONE_EPOCH_OF_20_BATCHES_NO_FIGURES = ["trainer.max_epochs=1", *limits(train=20, val=1, test=1), *WITHOUT_FIGURES]


@pytest.fixture(scope="module")
def seeds_sweep(tmp_path_factory, real_data_dir):
    """A 2-β × 2-seed multirun with tiny limits and no figures."""
    root = tmp_path_factory.mktemp("seeds")
    run_module(
        "betavae.train",
        "-m",
        "beta=0.5,2.0",
        "seed=1,2",
        *ONE_EPOCH_OF_20_BATCHES_NO_FIGURES,
        f"hydra.sweep.dir={root}",
    )
    return root


def test_seeds_are_grouped_as_mean_and_std(seeds_sweep):
    summary = json.loads((seeds_sweep / "summary.json").read_text())
    assert [(g["beta"], g["n"], g["seeds"]) for g in summary["groups"]] == [(0.5, 2, [1, 2]), (2.0, 2, [1, 2])]
    for group in summary["groups"]:
        jobs = [j for j in summary["jobs"] if j["beta"] == group["beta"]]
        values = [j["test/kl"] for j in jobs]
        assert group["test/kl"] == pytest.approx(statistics.fmean(values))
        assert group["test/kl std"] == pytest.approx(statistics.stdev(values))
        assert group["test/kl std"] > 0
    table = (seeds_sweep / "summary.md").read_text()
    assert table.count(" ± ") >= 2 * 4
    assert "| beta=0.5 | 0.5 | 2 | ok |" in table


def test_paired_differences_are_per_seed_differences_with_a_t_interval(seeds_sweep):
    summary = json.loads((seeds_sweep / "summary.json").read_text())
    jobs = {(j["beta"], j["seed"]): j for j in summary["jobs"]}
    diffs = [jobs[(2.0, s)]["test/kl"] - jobs[(0.5, s)]["test/kl"] for s in (1, 2)]
    pair = next(p for p in summary["paired"] if p["metric"] == "test/kl")
    assert (pair["from"], pair["to"], pair["n"]) == ("beta=0.5", "beta=2.0", 2)
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = 12.7062 * sd / 2**0.5  # Student t, 1 degree of freedom, 97.5%
    assert pair["mean"] == pytest.approx(mean)
    assert pair["sd"] == pytest.approx(sd)
    assert pair["ci95"] == pytest.approx([mean - half, mean + half])
    assert pair["within_noise"] == (mean - half <= 0 <= mean + half)
    assert "## Paired differences over shared seeds" in (seeds_sweep / "summary.md").read_text()


def test_a_job_without_metrics_is_listed_as_unfinished(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    broken = next(copy.glob("beta=2.0,*seed=2*"))
    (broken / "metrics.json").unlink()
    result = run_module("betavae.summarize", f"sweep_dir={copy}")
    assert "| beta=2.0,seed=2 | 2 | 1 | **unfinished**: no metrics.json: stopped early |" in result.stdout
    assert "| beta=0.5 | 0.5 | 2 | ok |" in result.stdout
    assert "| beta=2.0 | 2 | 1 | ok |" in result.stdout
    assert (copy / "summary.md").read_text().endswith(result.stdout)


def test_evaluate_sweep_writes_evaluation_figures_and_summary(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    run_module("betavae.evaluate", f"sweep_dir={copy}", "eval.limit=100", "eval.iw_samples=50",
               "eval.probe=false", "fid=none")  # fmt: skip
    for job in copy.glob("beta=*"):
        result = json.loads((job / "evaluation.json").read_text())
        assert result["test/iw_images"] == 100
        assert result["test/iw_samples"] == 50
        assert result["test/elbo_samples"] == 10
        assert result["test/nll_iw"] <= result["test/nll_elbo"]  # the same images: IW is the tighter bound
        assert 0 < result["test/nll_iw_se"] < 10
        assert 0 < result["test/nll_elbo_se"] < 10
        assert 0 < result["test/iw_ess"] <= 1
        assert "test/recon" not in result  # one name, one estimator: training's test pass owns test/recon
        assert 0 < result["test/mi"] <= 9.2104
        assert result["test/tc"] > 0
        assert result["test/dimwise_kl"] > 0
        for name in ("reconstructions", "prior_samples", "frozen_sigma", "interpolation", "latent_traversal"):
            assert (job / "figures" / f"{name}.png").is_file()  # trained with callbacks=none, drawn now
    assert "NLL IW (nats)" in (copy / "summary.md").read_text()
    assert "IW ESS / K" in (copy / "summary.md").read_text()
    paired = json.loads((copy / "summary.json").read_text())["paired"]
    assert {"test/mi", "test/tc", "test/dimwise_kl"} <= {p["metric"] for p in paired}  # filled in by evaluate


def test_iw_estimate_is_below_the_negative_elbo_and_tightens(seeds_sweep, real_data_dir):
    from hydra.utils import instantiate

    run = load_run(next(seeds_sweep.glob("beta=0.5,*seed=1*")))
    model = run.model
    images = instantiate(run.config.data).images("test")[0][:200]
    torch.manual_seed(0)
    negative_elbo = -float(elbo(model, images, samples=200).mean())
    estimates = {}  # K: per-image estimates of -log p(x) from 4 independent repeats, [4, 200]
    for k in (1, 10, 100):
        estimates[k] = torch.stack([-iw_log_likelihood(model, images, samples=k) for _ in range(4)])
    nll = -float(iw_log_likelihood(model, images, samples=1000).mean())
    assert 0.1 < negative_elbo - nll < 30  # a bound, tighter by a few nats, not hundreds
    means = [float(estimates[k].mean()) for k in (1, 10, 100)]
    assert means[0] > means[1] > means[2] > nll - 0.5  # does not grow with more samples
    spreads = [float(estimates[k].std(0).mean()) for k in (1, 10, 100)]  # spread of repeats, per image
    assert spreads[0] > 1.5 * spreads[1] > 2.25 * spreads[2]


def test_malicious_checkpoint_is_refused_and_nothing_runs(seeds_sweep, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(next(seeds_sweep.glob("beta=0.5,*seed=1*")), run)
    marker = tmp_path / "payload-ran"
    for ckpt in (run / "checkpoints").glob("*.ckpt"):
        torch.save({"state_dict": {}, "callbacks": Payload(marker)}, ckpt, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    with pytest.raises(RunError, match="refused"):
        load_checkpoint(run / "checkpoints" / "last.ckpt")
    result = run_module("betavae.evaluate", f"run_dir={run}", "fid=none", check=False)
    assert result.returncode != 0
    assert "refused" in result.stderr + result.stdout
    assert not marker.exists()
    assert not (run / "evaluation.json").exists()
    torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)  # the unsafe way does run the payload
    assert marker.exists()


def test_evaluate_takes_a_job_directory_as_the_sweep_wrote_it_and_limits_its_latent_statistics(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    job = next(copy.glob("beta=0.5,*seed=1*"))
    assert "=" in job.name
    assert "," in job.name
    run_module("betavae.evaluate", f"run_dir={job}", "eval.limit=20", "eval.iw_samples=5", "eval.probe=false",
               "eval.figures=false", "fid=none")  # fmt: skip  # unquoted, as pasted from the sweep
    result = json.loads((job / "evaluation.json").read_text())
    assert result["test/iw_images"] == 20
    run = load_run(job)  # the latent statistics are of the same 20 images
    posterior = encode_all(run.model, instantiate(run.config.data).images("test")[0][:20])
    parts = kl_decomposition(posterior)
    assert {k: result[f"test/{k}"] for k in parts} == pytest.approx(parts, rel=1e-4, abs=1e-6)
    assert result["test/active_units"] == float(active_units(posterior))


def test_evaluate_needs_exactly_one_target(tmp_path):
    result = run_module("betavae.evaluate", check=False)
    assert result.returncode != 0
    assert "give exactly one of run_dir=" in result.stderr
    missing = run_module("betavae.evaluate", f"sweep_dir={tmp_path}/nothing", check=False)
    assert missing.returncode != 0
    assert "sweep directory not found" in missing.stderr


def test_iso_elbo_lines_keep_the_points_in_view_and_mark_the_best_bound():
    from betavae.plotting import new_figure
    from betavae.summarize import iso_elbo_lines

    ax = new_figure(4, 3).add_subplot()
    points = [(38.7, 214.7), (17.0, 222.4), (12.2, 227.5)]  # (KL, recon)
    ax.errorbar(*zip(*points, strict=True), fmt="o")
    ax.margins(0.15)
    iso_elbo_lines(ax, [kl + recon for kl, recon in points])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert all(x0 < kl < x1 and y0 < recon < y1 for kl, recon in points)
    best = ax.get_legend().get_texts()[0].get_text()
    assert best.startswith("recon + KL = 239.4 (best −ELBO)")
