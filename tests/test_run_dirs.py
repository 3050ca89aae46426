"""A run directory holds one experiment: continuing it with other hyperparameters is refused and changes nothing;
checkpoints survive kills and full disks (real SIGKILLs, a real tmpfs); every fault is one line; the run record
and the directory's paths."""

import errno
import json
import os
import random
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from betavae.base.errors import DiskFull, Refused, RunError
from betavae.base.files import atomic, remove_temporaries
from betavae.model.checkpoints import AtomicCheckpointIO, check_resumable, load_checkpoint, own_checkpoint
from betavae.runs.continuation import MOVED, check_continuation, record_part, run_config
from betavae.runs.failures import failure
from betavae.runs.layout import JobDir, RunRecord, Status
from betavae.runs.process import job_lock
from tests.helpers import (
    WITHOUT_FIGURES,
    compose_train,
    limits,
    run_module,
    start_module,
    started_run,
    strict_json,
    train_job,
)


@contextmanager
def tmpfs(path, size):
    """A real tmpfs of ``size`` mounted at ``path`` (skips where this process may not mount one)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_continuing_with_other_hyperparameters_is_refused_naming_each_key_and_both_values(tmp_path):
    run = started_run(tmp_path / "run", "beta=0.1")
    before = (run / ".hydra" / "config.yaml").read_bytes()
    with pytest.raises(Refused) as refused:
        check_continuation(run, compose_train("beta=4.0", "lr=0.01", "model.net.latent_dim=10", "trainer.max_epochs=4"))
    message = str(refused.value)
    assert "\n" not in message
    assert "trainer.max_epochs" not in message
    for change in ("beta: 0.1 -> 4.0", "lr: 0.001 -> 0.01", "model.net.latent_dim: 20 -> 10"):
        assert change in message
    assert f"ckpt_path={run}/checkpoints/last.ckpt" in message
    assert "hydra.run.dir=<new>" in message
    assert (run / ".hydra" / "config.yaml").read_bytes() == before


@pytest.mark.parametrize(
    "override",
    ["seed=7", "data.batch_size=64", "likelihood=continuous_bernoulli", "objective=capacity",
     "trainer.precision=bf16-mixed", "trainer.limit_val_batches=3", "+trainer.gradient_clip_val=1.0"],
)  # fmt: skip
def test_each_change_to_what_is_trained_is_refused(tmp_path, override):
    run = started_run(tmp_path / "run")
    with pytest.raises(Refused, match="holds a run trained with other values"):
        check_continuation(run, compose_train(override))


def test_a_benchmark_run_of_burgess_network_continues_with_model_burgess_and_is_refused_without(tmp_path):
    """Before 0.12 experiment=dsprites built Burgess et al.'s network; it now builds Locatello et al.'s."""
    run = started_run(tmp_path / "run", "experiment=dsprites_smoke", "model=burgess")
    with pytest.raises(Refused) as refused:
        check_continuation(run, compose_train("experiment=dsprites_smoke"))
    message = str(refused.value)
    assert "model.net._target_: 'betavae.model.networks.ConvVAE' -> 'betavae.model.networks.LocatelloVAE'" in message
    assert "model.net.channels: [32, 32, 32, 32] -> None" in message
    assert check_continuation(run, compose_train("experiment=dsprites_smoke", "model=burgess")) == {}


def test_epochs_devices_callbacks_logging_and_paths_may_change_and_are_returned(tmp_path):
    run = started_run(tmp_path / "run", "beta=0.1")
    allowed = ["beta=0.1", "trainer.max_epochs=60", "trainer=cpu", "callbacks=none", "logger=csv", "fid=none",
               "data.root=/elsewhere", "ckpt_path=/x.ckpt", "trainer.limit_test_batches=2"]  # fmt: skip
    changed = check_continuation(run, compose_train(*allowed))
    assert changed["trainer.max_epochs"] == (30, 60)
    assert changed["data.root"] == (None, "/elsewhere")
    assert not any(k.startswith(("beta", "model", "objective", "lr", "seed")) for k in changed)


def test_a_directory_of_an_earlier_version_continues(tmp_path):
    run = started_run(tmp_path / "run")
    recorded = OmegaConf.load(run / ".hydra" / "config.yaml")
    del recorded["continue_may_change"], recorded.trainer["plugins"]  # keys this version added
    OmegaConf.save(recorded, run / ".hydra" / "config.yaml")
    assert {"continue_may_change", "trainer.plugins"} <= set(check_continuation(run, compose_train()))


def test_a_directory_of_0_5_0_whose_networks_took_pixels_continues_as_the_same_experiment(tmp_path):
    run = started_run(tmp_path / "run")
    recorded = OmegaConf.load(run / ".hydra" / "config.yaml")
    del recorded.model.net["image_size"], recorded.data["image_size"]
    recorded.model.net.input_dim = 784  # how 0.5.0 and earlier recorded the MLP
    OmegaConf.save(recorded, run / ".hydra" / "config.yaml")
    assert check_continuation(run, compose_train()) == {}
    refused = compose_train("model=conv")
    with pytest.raises(Refused, match=r"model\.net\._target_"):
        check_continuation(run, refused)


def test_a_directory_of_0_7_0_whose_networks_took_no_channels_continues_as_the_same_experiment(tmp_path):
    run = started_run(tmp_path / "run", "model=conv")
    recorded = OmegaConf.load(run / ".hydra" / "config.yaml")
    del recorded.model.net["image_channels"], recorded.data["channels"]  # how 0.7.0 and earlier recorded them
    OmegaConf.save(recorded, run / ".hydra" / "config.yaml")
    assert check_continuation(run, compose_train("model=conv")) == {}


def test_a_directory_of_0_11_whose_config_names_classes_where_they_were_continues_and_builds(tmp_path):
    run = started_run(tmp_path / "run", "objective=tcvae")
    path = run / ".hydra" / "config.yaml"
    text = path.read_text()
    for old, new in MOVED.items():  # how 0.11 and earlier named the classes
        text = text.replace(f"_target_: {new}.", f"_target_: {old}.")
    assert "_target_: betavae.module.BetaVAEModule" in text and "_target_: callbacks.metrics.TestScores" in text
    path.write_text(text)
    assert check_continuation(run, compose_train("objective=tcvae")) == {}
    recorded = run_config(run)
    assert recorded.model._target_ == "betavae.model.module.BetaVAEModule"
    assert recorded.scores._target_ == "betavae.callbacks.metrics.TestScores"
    assert type(instantiate(recorded.model.net)).__name__ == "MLPVAE"


def test_a_directory_without_work_starts_a_new_experiment(tmp_path):
    run = started_run(tmp_path / "run", "beta=0.1")
    (run / "checkpoints" / "last.ckpt").unlink()  # a run that failed before its first checkpoint
    assert check_continuation(run, compose_train("beta=4.0")) == {}


def test_a_continuation_appends_its_overrides_and_changes_to_continued_yaml(tmp_path):
    run = started_run(tmp_path / "run", "beta=0.1")
    cfg = compose_train("beta=0.1", "trainer.max_epochs=60")
    record_part(run, cfg, OmegaConf.create({"overrides": {"task": ["trainer.max_epochs=60"]}}), {"x": (1, 2)})
    (part,) = yaml.safe_load((run / ".hydra" / "continued.yaml").read_text())
    assert part["overrides"] == ["trainer.max_epochs=60"]
    assert part["changed"] == {"x": [1, 2]}
    assert OmegaConf.load(run / ".hydra" / "config.yaml").trainer.max_epochs == 60


def test_a_checkpoint_write_that_does_not_fit_is_refused_in_one_line_and_keeps_the_old_file(tmp_path):
    with tmpfs(tmp_path / "small", "1m") as disk:
        path = disk / "last.ckpt"
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(1000)}, path)
        old = path.read_bytes()
        with pytest.raises(DiskFull) as full:
            AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(500_000)}, path)  # 2 MB
        assert str(full.value).startswith(f"{disk}: out of disk space writing last.ckpt: needs 2.0 MB free")
        assert "\n" not in str(full.value)
        assert path.read_bytes() == old
        assert sorted(p.name for p in disk.iterdir()) == ["last.ckpt"]


def test_a_write_that_fills_the_disk_midway_leaves_no_temporary_and_says_so(tmp_path):
    with tmpfs(tmp_path / "small", "1m") as disk:
        full = f"{disk}: out of disk space writing big.bin: needs more free space"
        with pytest.raises(DiskFull, match=full), atomic(disk / "big.bin") as tmp:
            tmp.write_bytes(bytes(2_000_000))
        assert list(disk.iterdir()) == []


def test_an_empty_checkpoint_is_refused_in_one_line_saying_it_is_empty(tmp_path):
    (tmp_path / "zero.ckpt").touch()
    with pytest.raises(RunError, match=r"zero.ckpt: refused, .* \(the file is empty\)$"):
        load_checkpoint(tmp_path / "zero.ckpt")


def test_a_damaged_last_checkpoint_is_set_aside_for_the_newest_intact_one(tmp_path, caplog):
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    torch.save({"epoch": 0}, directory / "best-epoch=000.ckpt")
    torch.save({"epoch": 1}, directory / "best-epoch=001.ckpt")
    os.utime(directory / "best-epoch=000.ckpt", (1, 1))  # older
    (directory / "last.ckpt").write_bytes(b"")  # what Lightning's save left after a kill on another filesystem
    path, checkpoint = own_checkpoint(directory)
    assert (path.name, checkpoint["epoch"]) == ("best-epoch=001.ckpt", 1)
    (aside,) = directory.glob("last.ckpt.damaged-*")
    assert aside.name in caplog.text
    assert "the file is empty" in caplog.text
    for name in ("best-epoch=001.ckpt", "best-epoch=000.ckpt"):
        (directory / name).write_bytes(b"junk")
    assert own_checkpoint(directory) == (None, None)  # nothing intact: the job starts over
    assert not list(directory.glob("*.ckpt"))


def test_errors_are_recorded_in_one_line_also_without_a_message_or_from_a_full_disk_we_do_not_write():
    assert failure(MemoryError(), compose_train()) == ("failed", "MemoryError")
    full = OSError(errno.ENOSPC, "No space left on device", "/nowhere/run/tensorboard/events.out")
    assert failure(RuntimeError("flush failed"), compose_train()) is None  # unexpected: a bug, with its traceback
    wrapped = RuntimeError("flush failed")
    wrapped.__cause__ = full
    status, reason = failure(wrapped, compose_train())
    assert status == "failed"
    assert reason.startswith("/nowhere/run/tensorboard: out of disk space writing events.out")


def test_temporaries_of_killed_writes_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / "checkpoints" / ".last.ckpt.123.tmp", tmp_path / ".metrics.json.9.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    (tmp_path / "keep.tmp").write_bytes(b"not ours")
    assert sorted(remove_temporaries(tmp_path)) == sorted(stale)
    assert [p.name for p in tmp_path.rglob("*.tmp")] == ["keep.tmp"]


# Real runs of `python -m betavae.train` (subprocesses, real Fashion-MNIST).


@pytest.mark.slow
def test_a_directory_refuses_other_hyperparameters_and_continues_with_more_epochs(tmp_path, real_data_dir):
    run = tmp_path / "run"
    train_job(run, "beta=0.1", "trainer.max_epochs=1", "trainer.limit_train_batches=20")
    first_last = (run / "checkpoints" / "last.ckpt").read_bytes()
    kept = {p: p.read_bytes() for p in [*run.glob(".hydra/*"), run / "metrics.json", *run.glob("checkpoints/*")]}
    again = train_job(run, "beta=0.1", "trainer.max_epochs=1", "trainer.limit_train_batches=20", "callbacks=default")
    assert "Already finished" in again.stdout + again.stderr  # with other callbacks: allowed, nothing to do
    refused = train_job(run, "beta=4.0", "lr=0.01", "model.net.latent_dim=10", "trainer.max_epochs=2",
                    "trainer.limit_train_batches=20", check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert (
        refused.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: {run} holds a run trained with other values (beta: 0.1 -> 4.0, lr: 0.001 -> 0.01, "
            "model.net.latent_dim: 20 -> 10); one directory holds one experiment"
        )
    )
    assert {p: p.read_bytes() for p in kept} == kept  # nothing rewritten, .hydra/ included
    train_job(run, "beta=0.1", "trainer.max_epochs=2", "trainer.limit_train_batches=20")
    metrics = strict_json(run / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["epochs"] == 2
    assert metrics["weight"] == {"beta": 0.1}
    (part,) = yaml.safe_load((run / ".hydra" / "continued.yaml").read_text())
    assert part["changed"] == {"trainer.max_epochs": [1, 2]}
    bests = sorted(p.name for p in (run / "checkpoints").glob("best-*.ckpt"))
    assert bests == [Path(metrics["best_checkpoint"]).name]  # no older best beside the current one
    # Killed between the best and the last save of epoch 1: the best is epoch 1's, last.ckpt epoch 0's.
    (run / "checkpoints" / "last.ckpt").write_bytes(first_last)
    (run / "metrics.json").unlink()
    train_job(run, "beta=0.1", "trainer.max_epochs=2", "trainer.limit_train_batches=20")
    assert sorted(p.name for p in (run / "checkpoints").glob("best-*.ckpt")) == bests  # rewritten, not -v1
    assert strict_json(run / "metrics.json")["best_checkpoint"] == metrics["best_checkpoint"]


@pytest.mark.slow
def test_a_checkpoint_from_another_run_trains_at_this_runs_lr_unless_it_cannot_continue(tmp_path, real_data_dir):
    first, second = tmp_path / "first", tmp_path / "second"
    train_job(first, "trainer.max_epochs=2", "trainer.limit_train_batches=5")
    last = first / "checkpoints" / "last.ckpt"
    checkpoint, module = load_checkpoint(last), instantiate(compose_train("model.net.latent_dim=10").model)
    with pytest.raises(Refused) as narrower:
        check_resumable(last, checkpoint, compose_train("trainer.max_epochs=2"), module)
    assert str(narrower.value) == (f"{last} holds a network with latent_dim=20, this config builds latent_dim=10 "
                                   "(model.net.latent_dim); its weights cannot continue here")  # fmt: skip
    with pytest.raises(Refused) as fewer:
        check_resumable(last, checkpoint, compose_train("trainer.max_epochs=1"), instantiate(compose_train().model))
    assert str(fewer.value) == (f"trainer.max_epochs=1: {last} has already trained 2 epochs; give "
                                "trainer.max_epochs=2 or more")  # fmt: skip
    train_job(second, f"ckpt_path={last}", "lr=0.01", "trainer.max_epochs=3", "trainer.limit_train_batches=5")
    resumed = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["epoch"] == 2
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == 0.01


@pytest.mark.slow
def test_invalid_list_value_is_one_line_and_recorded_as_strict_json(tmp_path, real_data_dir):
    result = train_job(tmp_path, "beta=[1,2]", check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Invalid config: beta=[1, 2]: must be a finite number >= 0"
    assert strict_json(tmp_path / "metrics.json")["beta"] == [1, 2]
    assert (tmp_path / ".hydra" / "config.yaml").is_file()  # a sweep's summary lists the failed job


def kill_while_replacing_last_checkpoint(args, checkpoints, timeout=120):
    """Start ``python -m betavae.train <args>``; SIGKILL it while it writes a new last.ckpt over an existing one."""
    process = start_module("betavae.train", *args)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            names = {e.name for e in os.scandir(checkpoints)} if checkpoints.is_dir() else set()
            if "last.ckpt" in names and any(n.startswith(".last.ckpt.") for n in names):
                process.send_signal(signal.SIGKILL)
                return
        raise AssertionError("the job never rewrote last.ckpt while it was watched")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)


@pytest.mark.slow
def test_a_kill_during_a_checkpoint_write_on_another_filesystem_leaves_a_usable_run(tmp_path, real_data_dir):
    with tmpfs(tmp_path / "disk", "100m") as disk:
        run = disk / "run"
        args = [*limits(train=2, val=1, test=2), *WITHOUT_FIGURES, f"hydra.run.dir={run}"]
        started = time.time()
        kill_while_replacing_last_checkpoint([*args, "trainer.max_epochs=200"], run / "checkpoints")
        recent = [e for e in os.scandir(tempfile.gettempdir()) if e.is_file() and e.stat().st_mtime >= started]
        leaked = [e.name for e in recent if e.stat().st_size > 1e6 and zipped(e.path)]
        assert not leaked  # Lightning's own save staged each checkpoint in the system's temporary directory
        for path in (run / "checkpoints").glob("*.ckpt"):
            load_checkpoint(path)  # every checkpoint whole: the old one or the new one
        epochs = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] + 2
        run_module("betavae.train", *args, f"trainer.max_epochs={epochs}")
        assert strict_json(run / "metrics.json")["epochs"] == epochs
        assert "Resuming from" in (run / "train.log").read_text()
        assert not list(run.rglob("*.tmp"))


def zipped(path: str) -> bool:
    """Whether a file is a zip archive, as torch.save writes a checkpoint (other processes' large files in the
    temporary directory, a log, are not leaked checkpoints)."""
    with open(path, "rb") as file:
        return file.read(4) == b"PK\x03\x04"


@pytest.mark.slow
def test_sigkills_at_random_moments_leave_whole_checkpoints_and_a_run_that_continues(tmp_path, real_data_dir):
    with tmpfs(tmp_path / "disk", "100m") as disk:
        run, rng = disk / "run", random.Random(0)
        args = [*limits(train=2, val=1, test=2), *WITHOUT_FIGURES, f"hydra.run.dir={run}"]
        last = run / "checkpoints" / "last.ckpt"

        def saved_at():
            return last.stat().st_mtime_ns if last.exists() else None

        for _ in range(2):  # training (two saves per epoch), then a continuation of it
            saved = saved_at()
            process = start_module("betavae.train", *args, "trainer.max_epochs=500")
            deadline = time.monotonic() + 120
            while saved_at() == saved:  # until it has saved once
                assert process.poll() is None and time.monotonic() < deadline, "no checkpoint saved within 120 s"
                time.sleep(0.05)
            time.sleep(rng.uniform(0, 1.5))  # then at a random moment of training and saving
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=60)
            for path in (run / "checkpoints").glob("*.ckpt"):
                load_checkpoint(path)
        epochs = torch.load(last, weights_only=True)["epoch"] + 2
        run_module("betavae.train", *args, f"trainer.max_epochs={epochs}")
        assert strict_json(run / "metrics.json")["epochs"] == epochs
        assert not list(run.rglob("*.tmp"))


@pytest.mark.slow
def test_a_full_disk_is_one_line_naming_the_space_needed_and_the_run_continues_once_freed(tmp_path, real_data_dir):
    with tmpfs(tmp_path / "disk", "15m") as disk:  # one 11.7 MB checkpoint fits, two do not
        run = disk / "run"
        result = train_job(run, "trainer.max_epochs=2", "trainer.limit_train_batches=5", check=False)
        line = result.stderr.strip().splitlines()[-1]
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert line.startswith(f"error: {run}/checkpoints: out of disk space writing last.ckpt: needs 11.7 MB free")
        assert line[len("error: ") :] == strict_json(run / "metrics.json")["reason"]
        assert line[len("error: ") :] in (run / "train.log").read_text()
        assert not list(run.rglob("*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=40m", str(disk)], check=True)
        train_job(run, "trainer.max_epochs=2", "trainer.limit_train_batches=5")
        assert strict_json(run / "metrics.json")["status"] == "ok"


# evaluate


@pytest.mark.slow
def test_evaluate_is_refused_while_another_process_holds_the_run(tmp_path):
    run = started_run(tmp_path / "run")
    with job_lock(run):
        result = run_module("betavae.evaluate", f"run_dir={run}", "fid=none", check=False)
    assert result.returncode != 0
    assert f"{run}/.lock: another run is using this directory" in result.stdout + result.stderr
    assert not (run / "evaluation.json").exists()


# The run record (metrics.json)


def test_a_finished_jobs_record_round_trips_with_its_status_first_and_its_test_metrics_flat(tmp_path):
    cfg = compose_train("beta=0.5", "objective.warmup_epochs=2")
    record = RunRecord.of_finished_job(cfg, {"test/loss": 240.5, "test/kl": 17.0}, 3, 12.5, "checkpoints/b.ckpt",
                                       {"beta": 0.5})  # fmt: skip
    record.write(tmp_path)
    written = strict_json(tmp_path / "metrics.json")
    assert list(written)[:3] == ["status", "test/loss", "test/kl"]
    assert written["status"] == "ok"
    assert written["objective"] == {"_target_": "betavae.model.objectives.BetaObjective", "warmup_epochs": 2}
    assert written["weight"] == {"beta": 0.5} and "beta" not in written  # β once: the objective's weight
    assert record.beta == 0.5
    assert (written["likelihood"], written["precision"], written["epochs"]) == ("Bernoulli", "32-true", 3)
    assert RunRecord.read(tmp_path) == record


def test_a_finished_jobs_record_of_0_11_with_beta_three_times_reads_as_it_did(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({
        "status": "ok", "test/loss": 240.5, "beta": 0.5, "seed": 1, "weight": {"beta": 0.5}, "epochs": 3,
        "objective": {"_target_": "betavae.loss.BetaObjective", "beta": 0.5, "warmup_epochs": 0}}))  # fmt: skip
    record = RunRecord.read(tmp_path)
    assert (record.beta, record.weight, record.epochs, record.metrics) == (0.5, {"beta": 0.5}, 3, {"test/loss": 240.5})


def test_an_unreadable_evaluation_is_left_out_of_a_jobs_results_with_a_warning(tmp_path, caplog):
    RunRecord(Status.OK, metrics={"test/loss": 240.5}).write(tmp_path)
    (tmp_path / "evaluation.json").write_text("{not json")
    with caplog.at_level("WARNING"):
        assert JobDir(tmp_path).results() == {"test/loss": 240.5}
    assert f"{tmp_path}/evaluation.json: unreadable, not a JSON object; its metrics are left out" in caplog.text


def test_a_stopped_jobs_record_keeps_beta_and_seed_as_given_and_its_reason(tmp_path):
    RunRecord.of_stopped_job(compose_train("beta=[1,2]"), Status.FAILED, "Invalid config: beta=[1, 2]").write(tmp_path)
    assert strict_json(tmp_path / "metrics.json") == {"status": "failed", "reason": "Invalid config: beta=[1, 2]",
                                                      "beta": [1, 2], "seed": 42}  # fmt: skip
    assert RunRecord.read(tmp_path).status is Status.FAILED


@pytest.mark.parametrize("text", ["{not json", "[]", '{"status": "lost"}', '{"status": "ok", "epochs": 1, "x": 2}'])
def test_a_file_that_is_not_a_record_reads_as_none_and_an_extra_key_is_ignored(tmp_path, text):
    (tmp_path / "metrics.json").write_text(text)
    record = RunRecord.read(tmp_path)
    if "epochs" in text:
        assert record.finished
        assert record.epochs == 1
    else:
        assert record is None
