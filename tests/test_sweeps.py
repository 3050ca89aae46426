"""Sweeps that survive: a SIGTERM'd multirun re-run to completion, failures isolated and listed, and the
joblib launcher; real Hydra multirun subprocesses on real Fashion-MNIST."""

import json
import shlex

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


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, real_data_dir):
    """lr=0.001 is sent SIGTERM as its first epoch ends, after that epoch's last.ckpt and before its means reach
    the loggers (tests.faults.TermsAfterCheckpoint), and lr=0.03 (which diverges) never starts; the same command
    then continues the first from its last.ckpt and records the second as failed, and a third run retrains
    nothing; the command that continues it is the one the stopped sweep printed. What each step left: the files
    and outputs after it."""
    root = tmp_path_factory.mktemp("sigterm") / "sweep"
    command = sweep_command(root, "lr=0.001,0.03", "trainer.max_epochs=3", "trainer.limit_train_batches=20",
                            "+callbacks.term._target_=tests.faults.TermsAfterCheckpoint")  # fmt: skip
    process = start_module(*command)
    _, stderr = process.communicate(timeout=120)
    first = job(root, "lr=0.001")
    steps = {"root": root, "first": first, "signalled": (first / "sigterm-sent").read_text(),
             "stopped": process.returncode, "stopped_stderr": stderr,
             "stopped_record": strict_json(first / "metrics.json"),
             "stopped_train_loss": [s.step for s in scalars(first)[1].get("train/loss", [])],
             "stopped_summary": (root / "summary.md").read_text()}  # fmt: skip
    printed = shlex.split(stderr.strip().splitlines()[-1].split("continue it with: ", 1)[1])
    assert printed[:3] == ["python", "-m", "betavae.train"]
    command = printed[2:]
    steps["again"] = run_module(*command, check=False)
    stamps = lambda: ((first / "metrics.json").stat().st_mtime_ns,  # noqa: E731
                      (first / "checkpoints" / "last.ckpt").stat().st_mtime_ns)  # fmt: skip
    steps["before_third"] = stamps()
    steps["third"] = run_module(*command, check=False)
    steps["after_third"] = stamps()
    return steps


def test_a_sigterm_stops_the_sweep_in_one_line_recording_the_job_as_interrupted(interrupted):
    assert interrupted["signalled"] == "0"  # as epoch 0's checkpoint was written
    assert interrupted["stopped"] != 0
    line = interrupted["stopped_stderr"].strip().splitlines()[-1]
    assert line.startswith("error: terminated by SIGTERM; continue it with: python -m betavae.train -m ")
    assert line.endswith(f" hydra.sweep.dir={interrupted['root']}") and "lr=0.001,0.03" in line
    assert interrupted["stopped_record"]["status"] == "interrupted"


def test_the_interrupted_sweeps_summary_lists_the_stopped_job_and_the_one_never_started(interrupted):
    summary = interrupted["stopped_summary"]
    assert "| lr=0.001 | 0.001 | 1 | **unfinished**: terminated by SIGTERM" in summary  # along the swept lr
    assert "| lr=0.03 | 0.03 | 1 | **not run**: never started |" in summary


def test_the_same_command_again_continues_the_stopped_job_to_its_end_each_epoch_once(interrupted):
    first = interrupted["first"]
    assert "Resuming from" in (first / "train.log").read_text()
    metrics = strict_json(first / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["epochs"] == 3
    assert [s.step for s in scalars(first)[1]["train/loss"]] == [19, 39, 59]
    assert sorted(p.name for p in (first / "checkpoints").iterdir()) == [
        metrics["best_checkpoint"].split("/")[1], "last.ckpt"]  # fmt: skip  # no -v1 copies


def test_a_sigterm_after_an_epochs_checkpoint_stops_training_once_its_means_are_logged(interrupted):
    assert interrupted["stopped_train_loss"] == [19]  # the continuation starts after epoch 0: never logged again


def test_a_diverging_job_fails_alone_and_the_sweep_exits_non_zero_naming_it(interrupted):
    again = interrupted["again"]
    assert again.returncode != 0
    assert again.stderr.strip().splitlines()[-1].startswith("error: 1 of 2 jobs did not finish: lr=0.03")
    failed = strict_json(job(interrupted["root"], "lr=0.03") / "metrics.json")
    assert failed["status"] == "failed"
    assert failed["reason"].startswith("diverged: non-finite training loss")
    summary = json.loads((interrupted["root"] / "summary.json").read_text())
    assert [(j["label"], j["status"]) for j in summary["jobs"]] == [("lr=0.001", "ok"), ("lr=0.03", "failed")]


def test_a_third_run_retrains_nothing_that_finished(interrupted):
    assert interrupted["third"].returncode != 0  # lr=0.03 still fails
    assert "Already finished" in (interrupted["first"] / "train.log").read_text()
    assert interrupted["after_third"] == interrupted["before_third"]


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
    assert f"| objective.alpha=-1 | -1 | 1 | **failed**: {reason} |" in summary
    assert "| objective.alpha=1 | 1 | 1 | ok |" in summary


def test_a_sweep_whose_overrides_make_names_too_long_for_a_file_runs_in_shortened_directories(tmp_path, real_data_dir):
    root, deep = tmp_path / "sweep", f"model.net.hidden_dims=[{','.join(['8'] * 80)}]"
    run_module(*sweep_command(root, "beta=0.5,1.0", deep, "trainer.max_epochs=1", "trainer.limit_train_batches=2"))
    jobs = sorted(d for d in root.iterdir() if d.is_dir())
    assert len(jobs) == 2
    assert all(len(d.name.encode()) <= 255 for d in jobs)
    assert all(strict_json(d / "metrics.json")["status"] == "ok" for d in jobs)
    assert all(deep in (d / ".hydra" / "overrides.yaml").read_text() for d in jobs)  # every override kept
    summary = (root / "summary.md").read_text()
    assert "| beta=0.5 | 0.5 | 1 | ok |" in summary
    assert "| beta=1.0 | 1 | 1 | ok |" in summary
