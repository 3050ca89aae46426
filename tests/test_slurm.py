"""Against a real single-node Slurm started by scripts/slurm-local (skipped, with the reason, where it cannot
start): a 2-job sweep through hydra/launcher=slurm, a job reaching its time limit requeued and resuming, jobs
Slurm refuses or can never start reported in one line, and 2-task CPU DDP under srun."""

import json
import re
import subprocess
import sys
import time
import uuid

import pytest
import torch
from hydra.utils import instantiate

from betavae.model.run import load_run
from tests.helpers import REPO, WITHOUT_FIGURES, limits, run_module, start_module, strict_json

pytestmark = pytest.mark.slow
ONE_BATCH_CHECKS_NO_FIGURES = [*limits(val=1, test=1), *WITHOUT_FIGURES]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]


@pytest.fixture(scope="module")
def slurm(real_data_dir):
    """A running single-node Slurm; skips where scripts/slurm-local cannot start one (no root, no apt). Stops
    it afterwards unless it was running before."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="needs the slurm extra: pip install -e '.[slurm]'"
    )
    script = REPO / "scripts" / "slurm-local"
    was_running = subprocess.run(["pgrep", "-x", "slurmctld"], capture_output=True).returncode == 0
    result = subprocess.run([script, "start"], capture_output=True, text=True, timeout=300)
    if result.returncode == 77:
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, result.stderr
    yield
    if not was_running:
        subprocess.run([script, "stop"], check=True)


def wait_for_state(job_id, state, timeout=120):
    """Wait until Slurm reports ``state`` for the job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["squeue", "-h", "-o", "%T", "-j", job_id], capture_output=True, text=True).stdout
        if found.strip() == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"Slurm job {job_id} never reached {state}")


def job_name(kind):
    """A Slurm job name no job of an earlier session has: Slurm lists ended jobs for MinJobAge (300 s), also
    after a restart from its saved state, and a rerun's test would find, and cancel, an old job of its name."""
    return f"{kind}-{uuid.uuid4().hex[:12]}"


def slurm_job_id(name, timeout=120):
    """The id of the running or pending Slurm job called ``name``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["squeue", "-h", "-o", "%A", "-n", name], capture_output=True, text=True).stdout.split()
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no Slurm job named {name}")


def first_last_checkpoint(root, timeout=180):
    """The last.ckpt of the sweep's job under ``root``, once its first epoch has written it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := list(root.glob("*/checkpoints/last.ckpt")):
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no last.ckpt under {root} within {timeout} s")


def test_slurm_sweep_runs_both_jobs_and_summarises_them_quietly(slurm, tmp_path):
    root = tmp_path / "sweep"
    result = run_module(
        "betavae.train",
        "-m",
        *SLURM,
        *ONE_BATCH_CHECKS_NO_FIGURES,
        "beta=0.1,1.0",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",
        f"hydra.sweep.dir={root}",
    )
    jobs = sorted(d for d in root.iterdir() if d.name.startswith("beta="))
    assert [strict_json(j / "metrics.json")["status"] for j in jobs] == ["ok", "ok"]
    assert len(list((root / ".submitit").glob("*/*_submission.sh"))) >= 1  # Slurm ran them, through submitit
    groups = json.loads((root / "summary.json").read_text())["groups"]
    assert [(g["beta"], g["status"]) for g in groups] == [(0.1, "ok"), (1.0, "ok")]
    assert "sacct" not in result.stdout + result.stderr  # accounting is off here: no poll warnings


def test_a_job_reaching_its_time_limit_is_signalled_requeued_and_finishes_from_last_ckpt(slurm, tmp_path):
    """submitit's time-limit path on the real Slurm. Slurm sends the time-limit signal at its periodic check,
    up to a minute before signal_delay_s asks, so a job with a 1-minute limit may be signalled before Python
    could handle it: the job starts with 10 minutes and its limit is cut to 1 once its first checkpoint exists.
    slurmctld checks limits every 30 s, so the signal comes at most about 30 s after that cut: the first run waits
    3 s before each of its 16 epochs but the first (an epoch of 20 batches takes about 0.2 s here), so it has 45 s
    of training left then, and the requeued run trains its remaining epochs at full speed, in a second or two."""
    root, name = tmp_path / "sweep", job_name("timeout")
    process = start_module("betavae.train", "-m", *SLURM, *ONE_BATCH_CHECKS_NO_FIGURES, f"hydra.launcher.name={name}",
                           "hydra.launcher.timeout_min=10", "hydra.launcher.signal_delay_s=60", "trainer.max_epochs=16",
                           "trainer.limit_train_batches=20", "+callbacks.slow._target_=tests.faults.SlowUntilRequeued",
                           "+callbacks.slow.seconds=3", f"hydra.sweep.dir={root}")  # fmt: skip
    job_id = slurm_job_id(name)
    last = first_last_checkpoint(root)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "TimeLimit=1"], check=True)
    wait_for_state(job_id, "PENDING")  # requeued by submitit, held for about 2 minutes: release it now
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "TimeLimit=10", "StartTime=now"], check=True)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    log = (last.parent.parent / "train.log").read_text()
    assert "Caught signal SIGUSR2" in log
    assert "this job is timed-out" in log
    assert "Requeued job" in log
    assert log.count("Output directory") == 2
    assert f"Resuming from {last}" in log
    metrics = strict_json(last.parent.parent / "metrics.json")
    assert metrics["status"] == "ok"
    assert metrics["epochs"] == 16
    assert torch.load(last, weights_only=True)["global_step"] == 16 * 20


def test_a_job_no_node_can_run_is_ended_and_recorded_in_one_line(slurm, tmp_path):
    root, name = tmp_path / "sweep", job_name("impossible")
    result = run_module(
        "betavae.train",
        "-m",
        *SLURM,
        *ONE_BATCH_CHECKS_NO_FIGURES,
        "hydra.launcher.cpus_per_task=1000",
        "beta=0.1,1.0",
        f"hydra.launcher.name={name}",
        f"hydra.sweep.dir={root}",
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: 2 of 2 jobs did not finish: beta=0.1 (failed); beta=1.0 (failed)"
    pattern = r"Slurm job \d+_\d cannot start: pending with reason PartitionConfig, .*; cancelled \(.*\)"
    for job in sorted(root.glob("beta=*")):
        reason = strict_json(job / "metrics.json")["reason"]
        assert re.fullmatch(pattern, reason)
        assert f"{reason} |" in (root / "summary.md").read_text()
    assert not subprocess.run(["squeue", "-h", "-n", name], capture_output=True, text=True).stdout  # cancelled


def test_a_job_killed_without_a_result_is_recorded_and_the_sweep_ends_in_one_line(slurm, tmp_path):
    root, name = tmp_path / "sweep", job_name("killed")
    long_run = ["trainer.max_epochs=50", "trainer.limit_train_batches=100"]
    process = start_module(
        "betavae.train",
        "-m",
        *SLURM,
        *ONE_BATCH_CHECKS_NO_FIGURES,
        f"hydra.launcher.name={name}",
        *long_run,
        f"hydra.sweep.dir={root}",
    )
    job_id = slurm_job_id(name)
    wait_for_state(job_id, "RUNNING")
    subprocess.run(["scancel", "--signal=KILL", job_id], check=True)  # as the out-of-memory killer would
    _, stderr = process.communicate(timeout=180)
    assert process.returncode != 0
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("error: 1 of 1 jobs did not finish: ")
    (job,) = root.glob("*/metrics.json")
    reason = strict_json(job)["reason"]
    assert re.fullmatch(rf"Slurm job {job_id}\S* ended without a result \(state \w+\): .+", reason), reason


def test_a_job_slurm_refuses_at_submission_is_one_line(slurm, tmp_path):
    result = run_module(
        "betavae.train",
        "-m",
        *SLURM[:-1],
        *ONE_BATCH_CHECKS_NO_FIGURES,
        "hydra.launcher.mem_gb=100000",
        f"hydra.sweep.dir={tmp_path}",
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: Slurm refused the jobs: Memory specification can not be satisfied;"), line


def test_two_task_ddp_under_srun_logs_the_test_kl_of_one_process(slurm, tmp_path, real_data_dir):
    from betavae.model.objectives import gaussian_kl

    run = tmp_path / "ddp"
    srun = ["srun", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--mem=4G"]
    train = [sys.executable, "-m", "betavae.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
             "trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=1", "callbacks=none",
             "fid=none", f"hydra.run.dir={run}"]  # fmt: skip
    result = subprocess.run(srun + train, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    loaded = load_run(run)
    module = loaded.module
    x = instantiate(loaded.config.data, root=str(real_data_dir)).images("test")[0]
    with torch.no_grad():
        kl = float(gaussian_kl(*module.net.encode(x)).sum(1).mean())
    assert strict_json(run / "metrics.json")["test/kl"] == pytest.approx(kl, rel=1e-4)
