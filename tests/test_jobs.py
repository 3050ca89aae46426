"""Jobs that survive: strict JSON, RNG state, the directory lock, SIGTERM, and the job-level behaviour of
`python -m betavae.train` (true last.ckpt, exact resume, divergence, one-line errors) as real subprocesses."""

import math
import os
import pickle
import signal

import numpy as np
import pytest
import torch

from betavae.base.errors import RunError, Terminated
from betavae.base.files import write_json
from betavae.model.rng import rng_state, set_rng_state
from betavae.runs.devices import set_threads
from betavae.runs.process import job_lock, raise_on_sigterm
from tests.helpers import Payload, scalars, strict_json, train_job, write_idx


def test_json_is_written_strict_with_non_finite_numbers_as_null(tmp_path):
    write_json(tmp_path / "m.json", {"a": math.nan, "b": [math.inf, 1.5], "c": {"d": -math.inf}})
    assert strict_json(tmp_path / "m.json") == {"a": None, "b": [None, 1.5], "c": {"d": None}}


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path):
    import random

    torch.save({"rng": rng_state()}, tmp_path / "state.ckpt")
    first = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "state.ckpt", weights_only=True)["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def test_a_second_lock_on_a_job_directory_is_refused_naming_the_lock(tmp_path):
    with (
        job_lock(tmp_path),
        pytest.raises(RunError, match=rf"{tmp_path}/.lock: another run is using this directory \(pid {os.getpid()}"),
        job_lock(tmp_path),
    ):
        pass
    with job_lock(tmp_path):  # released when the holder ends
        pass


def test_sigterm_raises_terminated_inside_the_block_only():
    resume = "continue it with: python -m betavae.train hydra.run.dir=x"
    with pytest.raises(Terminated, match=f"^terminated by SIGTERM; {resume}$"), raise_on_sigterm(resume):
        os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_sigterm_while_deferred_raises_terminated_where_lightnings_loop_stops_or_at_once_without_its_handler():
    resume = "continue it with: python -m betavae.train hydra.run.dir=x"
    reached = []
    stopped = pytest.raises(Terminated, match=f"^terminated by SIGTERM; {resume}$")
    with raise_on_sigterm(resume) as sigterm, stopped, sigterm.deferred():
        signal.signal(signal.SIGTERM, lambda signum, frame: sigterm(signum, frame))  # as Lightning's handler calls it
        os.kill(os.getpid(), signal.SIGTERM)
        reached.append("after the signal")
        raise SystemExit(1)  # as Lightning's loop stops for it (SIGTERMException)
    assert reached == ["after the signal"]
    with raise_on_sigterm(resume) as sigterm, pytest.raises(Terminated), sigterm.deferred():
        signal.signal(signal.SIGTERM, lambda signum, frame: sigterm(signum, frame))
        os.kill(os.getpid(), signal.SIGTERM)  # a signal the loop never stopped for: as the block ends
    with raise_on_sigterm(resume) as sigterm, pytest.raises(Terminated), sigterm.deferred():
        os.kill(os.getpid(), signal.SIGTERM)  # before Lightning's handler is there: at once
        reached.append("never")
    assert reached == ["after the signal"]
    with raise_on_sigterm(resume) as sigterm, pytest.raises(SystemExit) as other, sigterm.deferred():
        raise SystemExit(3)  # without a signal: as it was
    assert not isinstance(other.value, Terminated)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_parallel_jobs_share_the_cores_as_torch_threads():
    before = torch.get_num_threads()
    try:
        assert set_threads(len(os.sched_getaffinity(0))) == 1
        assert set_threads(1) == 1  # one job alone keeps what it has
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_last_checkpoint_is_the_last_epoch_when_an_earlier_epoch_was_best(tmp_path, real_data_dir):
    # one step per epoch at a tiny lr: val/loss on one image is sampling noise, so the best epoch is not the last
    train_job(tmp_path, "lr=1e-5", "trainer.max_epochs=4", "trainer.limit_train_batches=1",
          "trainer.limit_val_batches=1", "data.eval_batch_size=1")  # fmt: skip
    metrics = strict_json(tmp_path / "metrics.json")
    best = torch.load(tmp_path / metrics["best_checkpoint"], weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert best["epoch"] < 3, "precondition: the best epoch must not be the last one"
    assert (last["epoch"], last["global_step"]) == (3, 4)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [f"best-epoch={best['epoch']:03d}.ckpt",
                                                                            "last.ckpt"]  # fmt: skip


@pytest.mark.slow
def test_one_epoch_resumed_for_another_equals_two_straight_epochs(tmp_path, real_data_dir):
    """Same thread count, same process setup: weights, every val/loss, test metrics and the figures' state."""
    stateless = [
        "frozen_sigma",
        "latent_traversal",
        "interpolation",
        "prior_samples",
        "reconstructions",
        "latent_stats",
    ]
    figures = ["callbacks=default", "callbacks.latent_evolution.per_class=30", "trainer.limit_train_batches=20",
               *(f"~callbacks.{name}" for name in stateless)]  # fmt: skip  # keep the callbacks that have state
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train_job(straight, *figures, "trainer.max_epochs=2")
    train_job(resumed, *figures, "trainer.max_epochs=1")
    first_part = strict_json(resumed / "metrics.json")["wall_time_s"]
    result = train_job(resumed, *figures, "trainer.max_epochs=2")  # the same directory: continues from last.ckpt
    assert "Resuming from" in (resumed / "train.log").read_text()
    assert result.returncode == 0
    a, b = (torch.load(d / "checkpoints" / "last.ckpt", weights_only=True) for d in (straight, resumed))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ma, mb = strict_json(straight / "metrics.json"), strict_json(resumed / "metrics.json")
    assert {k: v for k, v in ma.items() if k.startswith("test/")} == {
        k: v for k, v in mb.items() if k.startswith("test/")
    }
    assert mb["epochs"] == 2
    assert mb["wall_time_s"] > first_part  # the whole run's training time
    for metrics, ckpt in ((ma, a), (mb, b)):  # counted once, though test() reloads the Timer state (twice: 2×)
        elapsed = ckpt["callbacks"]["Timer"]["time_elapsed"]["train"]  # under a second: a busy machine's jitter
        assert metrics["wall_time_s"] == pytest.approx(elapsed, rel=0.1, abs=min(0.3, elapsed / 2))
    sa, sb = scalars(straight)[1], scalars(resumed)[1]
    assert [(s.step, s.value) for s in sa["val/loss"]] == [(s.step, s.value) for s in sb["val/loss"]]
    for name in ("latent_evolution.gif", "training_curves.png"):  # every epoch is drawn, not only the resumed one
        assert (straight / "figures" / name).read_bytes() == (resumed / "figures" / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize("lr", ["0.03", "1e9"])
def test_divergence_stops_the_job_in_one_line_naming_the_step(tmp_path, real_data_dir, lr):
    result = train_job(tmp_path, f"lr={lr}", "trainer.max_epochs=2", "trainer.limit_train_batches=30", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: diverged: non-finite training loss at step ")
    assert ", epoch 0 (" in line
    assert "KL = " in line or "recon = " in line
    metrics = strict_json(tmp_path / "metrics.json")
    assert metrics["status"] == "failed"
    assert metrics["reason"] == line.removeprefix("error: ")
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()  # the diverged epoch saved nothing


def broken_data(kind, root):
    """A data.root holding a damaged copy of the four IDX files (or none), and the file the error must name."""
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (10, 28, 28)), rng.integers(0, 10, 10)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images, 2051)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels, 2049)
    culprit = root / "train-images-idx3-ubyte.gz"
    if kind == "truncated .gz":
        culprit.write_bytes(culprit.read_bytes()[:40])
    elif kind == "zero-byte file":
        culprit.write_bytes(b"")
    elif kind == "swapped IDX files":
        images_file, labels_file = culprit.read_bytes(), (root / "train-labels-idx1-ubyte.gz").read_bytes()
        culprit.write_bytes(labels_file)
        (root / "train-labels-idx1-ubyte.gz").write_bytes(images_file)
    elif kind == "missing data":
        for path in root.iterdir():
            path.unlink()
        return "Fashion-MNIST not found"
    return str(culprit)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["truncated .gz", "zero-byte file", "swapped IDX files", "missing data"])
def test_data_errors_are_one_line_naming_the_file(tmp_path, kind):
    named = broken_data(kind, tmp_path / "data")
    result = train_job(
        tmp_path / "run", f"data.root={tmp_path / 'data'}", "data.system_dir=null", "data.download=false", check=False
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ")
    assert named in line
    assert strict_json(tmp_path / "run" / "metrics.json")["status"] == "failed"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["half-written", "malicious"])
def test_bad_checkpoint_as_ckpt_path_is_refused_in_one_line(tmp_path, real_data_dir, kind):
    ckpt, marker = tmp_path / "bad.ckpt", tmp_path / "payload-ran"
    if kind == "half-written":
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:500])
    else:
        torch.save({"state_dict": {}, "callbacks": Payload(marker)}, ckpt, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    result = train_job(tmp_path / "run", f"ckpt_path={ckpt}", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {ckpt}: refused")
    assert not marker.exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_a_second_run_in_a_busy_directory_is_refused_and_changes_nothing(tmp_path, real_data_dir):
    run = tmp_path / "run"
    with job_lock(run):  # a run in progress there
        result = train_job(run, "trainer.max_epochs=1", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {run}/.lock: another run is using this")
    assert not (run / "metrics.json").exists()
    assert not (run / "checkpoints").exists()
    assert not (run / ".hydra").exists()  # Hydra's own writing of .hydra/ is off: the job writes it once it runs


@pytest.mark.slow
def test_a_one_dimensional_latent_space_trains_and_draws_every_default_figure(tmp_path, real_data_dir):
    train_job(tmp_path, "model.net.latent_dim=1", "callbacks=default", "callbacks.latent_evolution.per_class=30",
              "callbacks.latent_stats.probe=false", "trainer.max_epochs=1",
              "trainer.limit_train_batches=3")  # fmt: skip
    assert strict_json(tmp_path / "metrics.json")["status"] == "ok"
    for name in ("latent_evolution", "latent_traversal", "interpolation", "kl_per_dim", "frozen_sigma"):
        assert (tmp_path / "figures" / f"{name}.png").is_file(), name


def test_the_command_that_continues_a_job_names_its_own_directory_or_its_sweeps(tmp_path):
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from betavae.runs.names import resume_command

    run = {"mode": RunMode.RUN, "overrides": {"task": ["beta=0.5"]}, "runtime": {"output_dir": "outputs/d/t"}}
    assert resume_command(OmegaConf.create(run)) == (
        "continue it with: python -m betavae.train beta=0.5 hydra.run.dir=outputs/d/t"
    )
    sweep = tmp_path / "multirun" / "beta sweep"
    sweep.mkdir(parents=True)
    OmegaConf.save({"hydra": {"overrides": {"task": ["beta=0.1,0.5", "seed=1"]}}}, sweep / "multirun.yaml")
    job = {"mode": RunMode.MULTIRUN, "sweep": {"dir": str(sweep)}, "overrides": {"task": ["beta=0.1", "seed=1"]}}
    assert resume_command(OmegaConf.create(job)) == (  # the sweep's own overrides, its directory quoted for a shell
        f"continue it with: python -m betavae.train -m beta=0.1,0.5 seed=1 'hydra.sweep.dir={sweep}'"
    )
