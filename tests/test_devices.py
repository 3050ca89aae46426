"""The GPU and multi-process paths, on this CPU: a module that leaves its data's device at Lightning's teardown,
a job finished by re-running it after its fit, DDP on two gloo processes that fail alone, draw their own noise
and resume exactly, a DDP multirun, CUDA RNG states for fewer GPUs, one GPU per sweep job, and the reads
from the device during training."""

import json
import subprocess
import time

import pytest
import torch

from tests.helpers import WITHOUT_FIGURES, limits, run_module, run_process, strict_json

FIVE_BATCHES = limits(train=5, val=1, test=1)
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]
LEAVES = "tests.faults.LeavesAtTeardown"
FIGURES = ("latent_evolution", "reconstructions", "prior_samples", "frozen_sigma", "interpolation",
           "latent_traversal", "kl_per_dim", "training_curves")  # fmt: skip


def job(run, *overrides, batches=FIVE_BATCHES, check=True, door=run_module):
    """`python -m betavae.train` into ``run`` with ``batches`` limits (in this process, or as ``door`` runs it)."""
    return door("betavae.train", *batches, *overrides, f"hydra.run.dir={run}", check=check)


def timed_ddp(run, *overrides, batches=FIVE_BATCHES, fid="fid=none"):
    """A 2-process CPU DDP job into ``run``, a real process (Lightning starts rank 1 by running its command line
    again): (its result, seconds until every process of it had ended)."""
    start = time.monotonic()
    result = job(run, *DDP, "callbacks=none", *fid.split(), *overrides, batches=batches, check=False, door=run_process)
    while subprocess.run(["pgrep", "-f", f"hydra.run.dir={run}"], capture_output=True).returncode == 0:
        if time.monotonic() - start > 120:
            pytest.fail(f"a process of {run} is still running")
        time.sleep(0.2)
    return result, time.monotonic() - start


@pytest.mark.slow
def test_default_callbacks_and_fid_finish_when_teardown_moves_the_module_off_the_data_device(tmp_path, real_data_dir):
    run = tmp_path / "run"
    job(run, "trainer.max_epochs=2", "trainer.accelerator=cpu", f"+trainer.strategy._target_={LEAVES}",
        "callbacks.latent_evolution.per_class=50", "fid.num_images=500", "fid.sample_seeds=[0]",
        f"fid.cache_dir={tmp_path / 'fid'}")  # fmt: skip
    metrics = strict_json(run / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["test/fid"] > 0
    assert metrics["test/fid_recon"] > 0
    assert all((run / "figures" / f"{name}.png").is_file() for name in FIGURES)


@pytest.mark.slow
def test_a_job_killed_after_fitting_is_finished_by_running_it_again(tmp_path, real_data_dir):
    run = tmp_path / "run"
    overrides = ["trainer.max_epochs=2", "callbacks.latent_evolution.per_class=50", "fid=none",
                 "callbacks.latent_stats.probe=false"]  # fmt: skip  # every figure, not the probe's 6 s of fits
    job(run, *overrides)
    (run / "metrics.json").write_text(json.dumps({"status": "interrupted", "reason": "terminated by SIGTERM"}))
    for name in FIGURES:
        (run / "figures" / f"{name}.png").unlink()
    last = (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    job(run, *overrides)  # the fit is done: only the fit-end figures and the test pass run
    assert "Resuming from" in (run / "train.log").read_text()
    assert (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == last  # no epoch ran again
    metrics = strict_json(run / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["epochs"] == 2
    assert metrics["test/recon"] > 0
    assert all((run / "figures" / f"{name}.png").is_file() for name in FIGURES)


@pytest.mark.slow
@pytest.mark.parametrize("rank", [0, 1])
def test_a_fault_on_one_ddp_process_ends_both_within_a_minute_in_one_line(tmp_path, real_data_dir, rank):
    run = tmp_path / "run"
    result, seconds = timed_ddp(run, "trainer.max_epochs=2", "+callbacks.fault._target_=tests.faults.FailOnRank",
                                f"+callbacks.fault.rank={rank}")  # fmt: skip
    reason = "simulated fault" if rank == 0 else "rank 1: simulated fault"
    assert result.returncode != 0
    assert seconds < 60
    assert result.stderr.strip().splitlines()[-1] == f"error: {reason}"
    assert strict_json(run / "metrics.json") == {"status": "failed", "reason": reason, "beta": 1.0, "seed": 42}


def test_ddp_with_fewer_validation_images_than_processes_is_refused_before_its_processes_start(tmp_path, monkeypatch):
    import lightning.pytorch as pl

    def fit(*args, **kwargs):  # Lightning starts the other DDP processes in fit
        raise AssertionError("fit was called")

    monkeypatch.setattr(pl.Trainer, "fit", fit)
    result = job(tmp_path / "run", *DDP, "callbacks=none", "fid=none", "data.val_size=1", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Invalid config: data.val_size=1: must be at least the number of DDP processes (2), so that each "
        "validates some images"
    )


@pytest.mark.slow
def test_ddp_processes_draw_their_own_noise_resume_exactly_with_a_discriminator_and_test_every_image_once(
    tmp_path, real_data_dir
):
    """Each process has its own stream; a job stopped after 1 epoch and run again equals 2 straight epochs, on every
    process, for FactorVAE (its discriminator's weights synchronised and resumed with its own Adam, beside the
    model's); each process tests its half of the 10,000 test images and the logged KL equals one pass over all of
    them; FID, scored by rank 0 alone, reaches every rank's log."""
    from hydra.utils import instantiate

    from betavae.model.objectives import gaussian_kl
    from betavae.model.run import load_run

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    noise = ["+callbacks.noise._target_=tests.faults.RecordNoise", "objective=factorvae", "objective.hidden=16",
             "objective.layers=2"]  # fmt: skip
    fid = f"fid.num_images=500 fid.sample_seeds=[0] fid.recon=false fid.cache_dir={tmp_path / 'fid'}"  # on rank 0
    # the straight job leaves in `resumed` what the same job stopped after its first epoch would have left
    stopped = ["+callbacks.copy._target_=tests.faults.CopiesFirstEpoch", f"+callbacks.copy.to={resumed}"]
    for run, more in ((straight, stopped), (resumed, [])):
        result, _ = timed_ddp(
            run, "trainer.max_epochs=2", *noise, *more, batches=limits(train=5, val=1), fid=fid
        )  # all test images
        assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in (resumed / "train.log").read_text()
    first, second = (torch.load(straight / f"noise-rank{r}.pt") for r in (0, 1))
    assert not torch.equal(first, second)
    a, b = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, resumed))
    assert len(a["rng_state"]) == 2  # one set of RNG states per process
    assert any(k.startswith("objective.discriminator.") for k in a["state_dict"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert [len(s["state"]) for s in a["optimizer_states"]] == [len(s["state"]) for s in b["optimizer_states"]]
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"], strict=True):  # the model's, the discriminator's
        assert all(torch.equal(sa["state"][i]["exp_avg"], sb["state"][i]["exp_avg"]) for i in sa["state"])
    metrics = strict_json(straight / "metrics.json")
    assert metrics["test/loss"] == strict_json(resumed / "metrics.json")["test/loss"]
    assert metrics["test/fid"] > 0
    loaded = load_run(straight)
    module = loaded.module
    x = instantiate(loaded.config.data, root=str(real_data_dir)).images("test")[0]
    with torch.no_grad():
        kl = float(gaussian_kl(*module.net.encode(x)).sum(1).mean())
    assert len(x) == 10_000
    assert metrics["test/kl"] == pytest.approx(kl, rel=1e-4)


@pytest.mark.slow
def test_a_ddp_multirun_on_the_basic_launcher_is_refused_before_any_work(tmp_path):
    command = ["betavae.train", "-m", "beta=0.1,1.0", *DDP, *FIVE_BATCHES, *WITHOUT_FIGURES]
    result = run_module(*command, cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: trainer.strategy=ddp on 2 devices starts its processes by re-running the command, which a "
            "multirun (-m) cannot do: sweep with hydra/launcher=slurm"
        )
    )
    sweeps = list((tmp_path / "multirun").glob("*/*"))
    assert len(sweeps) == 1
    assert not list(sweeps[0].glob("*/checkpoints"))


class FakeCuda:
    """torch.cuda's RNG functions for a machine with ``count`` GPUs: each device's state kept in a dict."""

    def __init__(self, count):
        self.count, self.states = count, {}

    def set_rng_state(self, state, device=0):
        if device >= self.count:
            raise IndexError("tuple index out of range")  # what torch.cuda.default_generators[device] raises
        self.states[device] = state.clone()


@pytest.fixture
def one_gpu(monkeypatch):
    """This process seen as a one-GPU machine by the RNG code (CUDA itself is not touched)."""
    cuda = FakeCuda(1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda.count)
    monkeypatch.setattr(torch.cuda, "set_rng_state", cuda.set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", cuda.set_rng_state)  # what set_rng_state_all calls
    return cuda


def test_rng_states_saved_with_more_gpus_restore_on_a_machine_with_fewer(one_gpu):
    from betavae.model.rng import rng_state, set_rng_state

    state = rng_state()
    for saved in (torch.full((16,), 7, dtype=torch.uint8), [torch.full((16,), 7, dtype=torch.uint8)] * 4):
        set_rng_state({**state, "cuda": saved})  # this process's device, or an older checkpoint's list of all
        assert list(one_gpu.states) == [0]
        assert torch.equal(one_gpu.states[0], torch.full((16,), 7, dtype=torch.uint8))


def test_gpu_per_job_spreads_any_number_of_jobs_over_the_visible_gpus(monkeypatch):
    from betavae.runs.process import job_gpu

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert [job_gpu(k) for k in range(5)] == [[0], [1], [0], [1], [0]]


@pytest.mark.slow
def test_gpu_per_job_without_a_gpu_is_refused_in_one_line(tmp_path):
    result = job(tmp_path / "run", "trainer=gpu_per_job", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "Invalid config: trainer=gpu_per_job needs a CUDA GPU, and none is visible (trainer=cpu runs on the CPU)"
    )


@pytest.mark.slow
def test_bf16_mixed_is_recorded_and_warned_about_on_a_cpu_without_bfloat16_instructions(tmp_path, real_data_dir):
    from betavae.runs.devices import cpu_has_bf16

    run = tmp_path / "run"
    job(run, "trainer.precision=bf16-mixed", "trainer.max_epochs=1", *WITHOUT_FIGURES)
    assert strict_json(run / "metrics.json")["precision"] == "bf16-mixed"
    warned = "on a CPU without bfloat16 instructions" in (run / "train.log").read_text()
    assert warned == (not cpu_has_bf16())


READS = ("item", "tolist", "__bool__", "__float__", "__int__")  # what reads a tensor's value back to the host


@pytest.mark.slow
def test_training_steps_read_values_back_from_the_device_only_at_the_divergence_checks(
    tmp_path, real_data_dir, monkeypatch
):
    """On a GPU each read waits for the device; on this CPU the reads are counted. 100 batches, checked at
    batches 0, 50 and 99 (log_every_n_steps=50), with the progress bar redrawn every 10."""
    import lightning.pytorch as pl

    from betavae.callbacks.progress import ProgressBar
    from betavae.data.fashion_mnist import FashionMNISTDataModule
    from betavae.model.module import BetaVAEModule
    from betavae.model.networks import MLPVAE

    reads, counting = [], [False]

    def counted(name, read):
        def wrapper(tensor, *args):
            if counting[0]:
                reads.append(name)
            return read(tensor, *args)

        return wrapper

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))

    class Window(pl.Callback):
        """Count from the first training batch's start to the last one's end."""

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            counting[0] = counting[0] or batch_idx == 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            counting[0] = batch_idx + 1 < trainer.num_training_batches

    trainer = pl.Trainer(max_epochs=1, limit_train_batches=100, limit_val_batches=0, accelerator="cpu",
                         log_every_n_steps=50, logger=False, enable_checkpointing=False,
                         callbacks=[ProgressBar(refresh_rate=10), Window()], default_root_dir=tmp_path)  # fmt: skip
    datamodule = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False)
    trainer.fit(BetaVAEModule(MLPVAE()), datamodule=datamodule)
    assert reads == ["tolist"] * 3
