"""Sweeps that survive: a SIGTERM'd multirun re-run to completion, failures isolated and listed, and the
joblib launcher; real Hydra multirun subprocesses on real Fashion-MNIST."""

import json
import signal
import time

import pytest

from tests.helpers import WITHOUT_FIGURES, limits, run_module, scalars, start_module, strict_json

pytestmark = pytest.mark.slow
ONE_BATCH_CHECKS_NO_FIGURES = [*limits(val=1, test=1), *WITHOUT_FIGURES]


def sweep_command(root, *overrides):
    """The module and arguments of a multirun into ``root``."""
    return ["betavae.train", "-m", *ONE_BATCH_CHECKS_NO_FIGURES, *overrides, f"hydra.sweep.dir={root}"]


def job(root, override):
    """The job directory of ``root`` whose overrides include ``override``."""
    return next(d for d in root.iterdir() if override in d.name.split(","))


def test_sigtermed_sweep_is_finished_by_rerunning_it_and_failures_are_isolated(tmp_path, real_data_dir):
    """lr=0.001 is stopped by SIGTERM in its second epoch and lr=0.03 (which diverges) never starts; the same
    command then continues the first from its last.ckpt, records the second as failed, and a third run
    retrains nothing that finished."""
    root = tmp_path / "sweep"
    command = sweep_command(root, "lr=0.001,0.03", "trainer.max_epochs=3", "trainer.limit_train_batches=150")
    process = start_module(*command)
    deadline = time.monotonic() + 120
    while not list(root.glob("*lr=0.001,*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the first job must still be training"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "terminated by SIGTERM" in stderr.strip().splitlines()[-1]
    first = job(root, "lr=0.001")
    assert strict_json(first / "metrics.json")["status"] == "interrupted"
    summary = (root / "summary.md").read_text()
    assert "| lr=0.001 | 1 | 1 | **unfinished**: terminated by SIGTERM" in summary
    assert "| lr=0.03 | 1 | 1 | **not run**: never started |" in summary

    again = run_module(*command, check=False)
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 jobs did not finish: lr=0.03")
    assert "Resuming from" in (first / "train.log").read_text()
    metrics = strict_json(first / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["epochs"] == 3
    assert [s.step for s in scalars(first)[1]["train/loss"]] == [149, 299, 449]  # each epoch once
    assert sorted(p.name for p in (first / "checkpoints").iterdir()) == [
        metrics["best_checkpoint"].split("/")[1], "last.ckpt"]  # fmt: skip  # no -v1 copies
    failed = strict_json(job(root, "lr=0.03") / "metrics.json")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("diverged: non-finite training loss")
    summary = json.loads((root / "summary.json").read_text())
    assert [(j["label"], j["status"]) for j in summary["jobs"]] == [("lr=0.001", "ok"), ("lr=0.03", "failed")]

    before = (first / "metrics.json").stat().st_mtime_ns, (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    third = run_module(*command, check=False)
    assert third.returncode != 0
    assert "Already finished" in (first / "train.log").read_text()
    after = (first / "metrics.json").stat().st_mtime_ns, (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    assert after == before


def test_joblib_launcher_runs_jobs_at_once_with_the_cores_divided_in_directories_named_without_the_device(
    tmp_path, real_data_dir
):
    root = tmp_path / "sweep"
    overrides = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "beta=0.1,1.0", "trainer.max_epochs=1"]
    where = ["trainer=cpu", "trainer.accelerator=cpu", "trainer.devices=1"]  # the same jobs on a CPU or a GPU
    run_module("betavae.train", "-m", *ONE_BATCH_CHECKS_NO_FIGURES, *overrides, *where, "trainer.limit_train_batches=5",
               f"hydra.sweep.dir={root}")  # fmt: skip
    assert all(name not in d.name for d in root.glob("beta=*") for name in ("trainer=", "accelerator", "devices"))
    logs = [(job(root, f"beta={b}") / "train.log").read_text() for b in ("0.1", "1.0")]
    assert all("torch threads: 1 (2 parallel job(s) on this machine)" in log for log in logs)
    assert all(strict_json(job(root, f"beta={b}") / "metrics.json")["status"] == "ok" for b in ("0.1", "1.0"))
    assert "| beta=0.1 | 0.1 | 1 | ok |" in (root / "summary.md").read_text()


def test_a_sweep_with_invalid_jobs_ends_with_its_summary_listing_each_in_one_line(tmp_path, real_data_dir):
    root = tmp_path / "sweep"
    command = sweep_command(root, "objective=tcvae", "objective.alpha=-1,1", "trainer.max_epochs=1",
                            "trainer.limit_train_batches=3")  # fmt: skip
    result = run_module(*command, check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "error: 1 of 2 jobs did not finish: objective.alpha=-1 (failed)"
    summary = (root / "summary.md").read_text()
    reason = "Invalid config: objective.alpha=-1: must be a finite number >= 0"
    assert f"| objective.alpha=-1 | 1 | 1 | **failed**: {reason} |" in summary
    assert "| objective.alpha=1 | 1 | 1 | ok |" in summary
