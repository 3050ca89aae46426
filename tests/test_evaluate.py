"""`python -m betavae.evaluate` on a sweep's runs (its bounds tighten as they should), and safe checkpoint loading."""

import json
import pickle
import shutil

import pytest
import torch
from hydra.utils import instantiate

from betavae.base.errors import RunError
from betavae.metrics.bounds import elbo, iw_log_likelihood
from betavae.metrics.latents import active_units, kl_decomposition
from betavae.model.checkpoints import load_checkpoint
from betavae.model.networks import encode_all
from betavae.model.run import load_run
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
        "udr=none",  # UDR's own tests are test_selection's
        f"hydra.sweep.dir={root}",
    )
    return root


def test_evaluate_sweep_writes_evaluation_figures_and_summary(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    run_module("betavae.evaluate", f"sweep_dir={copy}", "eval.limit=100", "eval.iw_samples=50",
               "eval.probe=false", "fid=none", "udr=none")  # fmt: skip
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
    images = instantiate(run.config.data).images("test")[0][:100]
    torch.manual_seed(0)
    negative_elbo = -float(elbo(model, images, samples=200).mean())
    estimates = {}  # K: per-image estimates of -log p(x) from 4 independent repeats, [4, 100]
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


def test_a_run_whose_checkpoint_does_not_fit_its_hyperparameters_is_listed_in_one_line_and_the_others_go_on(
    seeds_sweep, tmp_path
):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    bad = next(copy.glob("beta=0.5,*seed=1*"))
    for path in (bad / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, weights_only=True)
        checkpoint["hyper_parameters"]["net"]["latent_dim"] = 2  # hand-edited
        torch.save(checkpoint, path)
    result = run_module("betavae.evaluate", f"sweep_dir={copy}", "eval.limit=20", "eval.iw_samples=5",
                        "eval.probe=false", "eval.figures=false", "fid=none", "udr=none", check=False)  # fmt: skip
    with pytest.raises(RunError) as refused:
        load_run(bad)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip().splitlines()[-1] == f"error: 1 of 4 runs could not be evaluated: {bad} ({refused.value})"
    )
    assert "its weights do not fit the network its hyperparameters describe" in str(refused.value)
    assert sorted(p.parent.name for p in copy.glob("*/evaluation.json")) == sorted(
        d.name for d in copy.glob("beta=*") if d != bad)  # fmt: skip
    assert (copy / "summary.md").is_file()


def test_evaluate_needs_exactly_one_target(tmp_path):
    result = run_module("betavae.evaluate", check=False)
    assert result.returncode != 0
    assert "give exactly one of run_dir=" in result.stderr
    missing = run_module("betavae.evaluate", f"sweep_dir={tmp_path}/nothing", check=False)
    assert missing.returncode != 0
    assert "sweep directory not found" in missing.stderr
