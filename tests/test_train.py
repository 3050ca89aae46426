"""End to end: real Hydra multirun subprocesses on real Fashion-MNIST, read back from disk."""

import json
import math

import pytest
import torch
from hydra.utils import instantiate
from tensorboard.plugins.hparams import plugin_data_pb2

from betavae.model.run import load_run
from tests.helpers import WITHOUT_FIGURES, limits, run_module, scalars

pytestmark = pytest.mark.slow

FEW_BATCHES = limits(train=6, val=2, test=2)
FEW_BATCHES_NO_FIGURES = [*FEW_BATCHES, *WITHOUT_FIGURES]
FEW_BATCHES_EVERY_FIGURE = [*FEW_BATCHES, "callbacks.latent_evolution.per_class=100", "fid.num_images=1000"]
STAGE_METRICS = [f"{stage}/{name}" for stage in ("train", "val", "test") for name in ("loss", "recon", "kl")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, real_data_dir):
    """A two-job β sweep with tiny limits; returns {beta: job_dir}."""
    root, cache = tmp_path_factory.mktemp("sweep"), tmp_path_factory.mktemp("fid_cache")
    overrides = [*FEW_BATCHES_EVERY_FIGURE, f"fid.cache_dir={cache}", f"hydra.sweep.dir={root}"]
    result = run_module("betavae.train", "-m", "beta=0.1,1.0", "trainer.max_epochs=2", *overrides)
    assert "Sweep summary" in result.stdout
    assert "| beta=0.1 | 0.1 | 1 | ok |" in result.stdout  # printed at the end
    jobs = {float(d.name.split(",")[0].split("=")[1]): d for d in root.iterdir() if d.name.startswith("beta=")}
    assert sorted(jobs) == [0.1, 1.0]
    return jobs


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_sweep_job_writes_checkpoints_metrics_and_tensorboard(sweep, beta):
    job = sweep[beta]
    assert job.name.startswith(f"beta={beta},")
    assert (job / "figures" / "latent_evolution.gif").is_file()
    assert (job / "figures" / "frozen_sigma.json").is_file()
    assert (job / ".hydra" / "config.yaml").is_file()
    assert (job / "checkpoints" / "last.ckpt").is_file()
    metrics = json.loads((job / "metrics.json").read_text())
    assert metrics["weight"] == {"beta": beta}
    assert metrics["seed"] == 42
    assert metrics["epochs"] == 2
    assert (job / metrics["best_checkpoint"]).is_file()
    assert metrics["best_checkpoint"].startswith("checkpoints/best")
    assert metrics["test/loss"] == pytest.approx(metrics["test/recon"] + beta * metrics["test/kl"], rel=1e-5)
    assert metrics["test/elbo"] == pytest.approx(-(metrics["test/recon"] + metrics["test/kl"]), rel=1e-5)
    assert 100 < metrics["test/recon"] < 600
    assert metrics["test/kl"] > 0
    assert metrics["test/fid"] > 0
    assert metrics["test/fid_recon"] > 0
    assert metrics["test/fid_std"] > 0  # three prior-sample draws
    assert 0 < metrics["test/mi"] <= 9.2104
    assert metrics["test/tc"] > 0
    assert metrics["test/dimwise_kl"] > 0  # ≤ log n
    assert all(0 < metrics[f"test/{p}_se"] < 0.5 for p in ("mi", "tc", "dimwise_kl"))
    assert metrics["objective"] == {"_target_": "betavae.model.objectives.BetaObjective", "warmup_epochs": 0}

    events, series = scalars(job)
    assert set(STAGE_METRICS) | {"test/elbo", "test/fid", "test/fid_recon", "val/active_units"} <= set(series)
    assert series["test/tc"][-1].value == pytest.approx(metrics["test/tc"], rel=1e-5)
    assert [len(series[f"train/{n}"]) for n in ("loss", "recon", "kl")] == [2, 2, 2]  # one value per epoch
    assert len(series["val/loss"]) == 2
    assert series["test/loss"][-1].value == pytest.approx(metrics["test/loss"], rel=1e-5)
    hparams = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/session_start_info"])
    assert start.session_start_info.hparams["beta"].number_value == pytest.approx(beta)
    assert start.session_start_info.hparams["precision"].string_value == metrics["precision"] == "32-true"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"])
    assert {m.name.tag for m in experiment.experiment.metric_infos} >= {"test/loss", "test/elbo"}


def test_logged_test_kl_and_its_decomposition_are_of_the_tested_images_only(sweep):
    """test/kl of the run equals a fresh pass of its best checkpoint over the same 2,000 test images, and the
    KL's decomposition and active units are of those images too (not of all 10,000), so the parts sum to it."""
    from betavae.metrics.latents import active_units, kl_decomposition
    from betavae.model.networks import encode_all
    from betavae.model.objectives import gaussian_kl

    run = load_run(sweep[1.0])
    module = run.module
    x = instantiate(run.config.data).images("test")[0][:2000]  # limit_test_batches=2 of 1000 images
    with torch.no_grad():
        exact_kl = float(gaussian_kl(*module.net.encode(x)).sum(1).mean())  # analytic: no sampling noise
    metrics = json.loads((sweep[1.0] / "metrics.json").read_text())
    assert metrics["test/kl"] == pytest.approx(exact_kl, rel=1e-4)
    posterior = encode_all(module.net, x)
    parts = kl_decomposition(posterior)  # the same seeded draw as the test pass
    assert {k: metrics[f"test/{k}"] for k in parts} == pytest.approx(parts, rel=1e-4, abs=1e-6)
    assert metrics["test/active_units"] == float(active_units(posterior))


def test_resume_from_last_checkpoint_continues_training(sweep, tmp_path):
    last = sweep[1.0] / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)  # loads without executing pickled code
    assert state["epoch"] == 1
    assert state["global_step"] == 12
    run = tmp_path / "resumed"
    run_module(
        "betavae.train", *FEW_BATCHES_NO_FIGURES, "trainer.max_epochs=3", f"ckpt_path='{last}'", f"hydra.run.dir={run}"
    )
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2
    assert resumed["global_step"] == 18
    _, series = scalars(run)
    assert [s.step for s in series["train/loss"]] == [17]  # only the third epoch ran
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3


def test_sweep_computes_real_fid_statistics_once(sweep):
    logs = [(job / "train.log").read_text() for _, job in sorted(sweep.items())]
    assert "computed and cached real statistics" in logs[0]
    assert "loaded cached real statistics" in logs[1]
    assert "computed and cached" not in logs[1]


def test_sweep_ends_with_a_summary_of_both_jobs(sweep):
    root = next(iter(sweep.values())).parent
    table = (root / "summary.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| beta=")]
    assert len(rows) == 2
    assert "| 0.1 | 1 | ok |" in rows[0]
    assert "| 1 | 1 | ok |" in rows[1]
    assert "FID of decoder means" in table
    assert "probe on z ~ q (%)" in table
    assert "probe on active μ (%)" in table
    assert "| MI (nats) | TC (nats) | dim-wise KL (nats) |" in table
    summary = json.loads((root / "summary.json").read_text())
    assert [g["beta"] for g in summary["groups"]] == [0.1, 1.0]
    metrics = json.loads((sweep[0.1] / "metrics.json").read_text())
    assert summary["groups"][0]["test/recon"] == pytest.approx(metrics["test/recon"])
    assert (root / "summary.csv").read_text().startswith("group,beta,n,status,test/recon,test/recon std")
    assert (root / "tradeoff.png").stat().st_size > 10_000
    group = summary["groups"][0]  # β = 0.1 after 12 steps: KL < 1 nat, so samples z ~ q carry little yet
    assert group["test/probe_accuracy_active"] > 50 > group["test/probe_accuracy"]  # chance is 10%


def test_continuous_bernoulli_capacity_run_logs_a_linear_capacity_and_a_normalised_recon(tmp_path, real_data_dir):
    from betavae.model.likelihoods import Bernoulli, ContinuousBernoulli

    run = tmp_path / "run"
    run_module("betavae.train", *FEW_BATCHES_NO_FIGURES, "trainer.max_epochs=3", "likelihood=continuous_bernoulli",
               "objective=capacity", "objective.c_max=25", "objective.c_steps=24", f"hydra.run.dir={run}")  # fmt: skip
    _, series = scalars(run)
    capacity = series["train/capacity"]
    assert [(c.step, c.value) for c in capacity] == [(5, 6.25), (11, 12.5), (17, 18.75)]  # 25 · steps / 24
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/loss"] == pytest.approx(metrics["test/recon"] + 100 * abs(metrics["test/kl"] - 25), rel=1e-5)
    loaded = load_run(run)
    module = loaded.module
    assert module.net.likelihood.name == "continuous_bernoulli"
    assert module.objective.c_max == 25
    x = instantiate(loaded.config.data).images("test")[0][:2000]
    with torch.no_grad():
        logits = module.net.decode(module.net.encode(x).mu)
        cb, bce = ContinuousBernoulli().nll(logits, x), Bernoulli().nll(logits, x)
        assert torch.equal(module.net.reconstruct(x), ContinuousBernoulli().mean(logits))  # what figures show
    assert float((bce - cb).min()) >= 784 * 0.6931
    assert float((bce - cb).mean()) > 784 * 0.6931  # log C(λ) ≥ ln 2
    assert metrics["test/recon"] < float(bce.mean()) - 543  # the run's own (one-sample) recon, same images


def test_a_conv_tcvae_run_trains_records_both_and_evaluates_unchanged(tmp_path, real_data_dir):
    """model=conv objective=tcvae: the checkpoint rebuilds a ConvVAE and the β-TCVAE objective (with the training
    split's size filled in), the minibatch parts are logged, and evaluate scores it like any run."""

    run = tmp_path / "run"
    run_module(
        "betavae.train",
        *FEW_BATCHES_NO_FIGURES,
        "trainer.max_epochs=1",
        "model=conv",
        "objective=tcvae",
        "beta=4",
        f"hydra.run.dir={run}",
    )
    metrics = json.loads((run / "metrics.json").read_text())
    parts = [metrics[f"test/{p}_batch"] for p in ("mi", "tc", "dimwise_kl")]
    assert metrics["test/loss"] == pytest.approx(metrics["test/recon"] + parts[0] + 4 * parts[1] + parts[2], rel=1e-5)
    assert sum(parts) == pytest.approx(metrics["test/kl"], abs=0.5)  # one-sample estimate of the same KL
    _, series = scalars(run)
    assert {"train/mi_batch", "train/tc_batch", "train/dimwise_kl_batch", "val/tc_batch"} <= set(series)
    module = load_run(run).module
    assert type(module.net).__name__ == "ConvVAE"
    assert module.net.architecture["channels"] == [32, 32, 32]
    assert module.objective.hparams() == {"name": "tcvae", "beta": 4.0, "alpha": 1.0, "gamma": 1.0, "batch_size": 128,
                                          "dataset_size": 55_000}  # fmt: skip
    run_module("betavae.evaluate", f"run_dir={run}", "eval.limit=50", "eval.iw_samples=5", "eval.probe=false",
               "eval.figures=false", "fid=none")  # fmt: skip
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["test/nll_iw"] <= evaluation["test/nll_elbo"]
    parts = [evaluation[f"test/{p}"] for p in ("mi", "tc", "dimwise_kl")]  # the decomposition of those 50 images
    assert -0.01 < parts[0] <= math.log(50) + 1e-6
    assert all(map(math.isfinite, parts))  # MI ≤ log n; an estimate
    refused = run_module("betavae.train", *FEW_BATCHES_NO_FIGURES, f"ckpt_path={run}/checkpoints/last.ckpt",
                         f"hydra.run.dir={tmp_path / 'mlp'}", check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "holds a network with name='conv', this config builds name='mlp' (model)" in refused.stderr
