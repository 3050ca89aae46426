"""Against a real single-node Slurm started by scripts/slurm-local (skipped, with the reason, where it cannot
start): a 2-job sweep through hydra/launcher=slurm, a requeued job resuming, and 2-task CPU DDP under srun."""

import json
import subprocess
import sys
import time
from shutil import which

import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import REPO, run_module
from tests.test_jobs import strict_json

pytestmark = pytest.mark.slow
SMALL = ["trainer.limit_val_batches=1", "trainer.limit_test_batches=1", "callbacks=none", "fid=none"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2"]


@pytest.fixture(scope="module")
def slurm(real_data_dir):
    """A running single-node Slurm; skips where scripts/slurm-local cannot start one (no root, no apt). Stops
    it afterwards unless it was running before."""
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="needs the slurm extra: pip install -e '.[slurm]'"
    )
    script = REPO / "scripts" / "slurm-local"
    was_running = bool(which("sinfo")) and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
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


def slurm_job_id(name, timeout=120):
    """The id of the running or pending Slurm job called ``name``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["squeue", "-h", "-o", "%A", "-n", name], capture_output=True, text=True).stdout.split()
        if found:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no Slurm job named {name}")


def test_slurm_sweep_runs_both_jobs_and_summarises_them_quietly(slurm, tmp_path):
    root = tmp_path / "sweep"
    result = run_module("betavae.train", "-m", *SLURM, *SMALL, "beta=0.1,1.0", "trainer.max_epochs=1",
                        "trainer.limit_train_batches=5", f"hydra.sweep.dir={root}")  # fmt: skip
    jobs = sorted(d for d in root.iterdir() if d.name.startswith("beta="))
    assert [strict_json(j / "metrics.json")["status"] for j in jobs] == ["ok", "ok"]
    assert len(list((root / ".submitit").glob("*/*_submission.sh"))) >= 1  # Slurm ran them, through submitit
    groups = json.loads((root / "summary.json").read_text())["groups"]
    assert [(g["beta"], g["status"]) for g in groups] == [(0.1, "ok"), (1.0, "ok")]
    assert "sacct" not in result.stdout + result.stderr  # accounting is off here: no poll warnings


def test_requeued_slurm_job_resumes_from_its_last_checkpoint(slurm, tmp_path):
    root, name = tmp_path / "sweep", f"requeue-{tmp_path.name}"
    command = [sys.executable, "-m", "betavae.train", "-m", *SLURM, *SMALL, f"hydra.launcher.name={name}",
               "trainer.max_epochs=4", "trainer.limit_train_batches=150", f"hydra.sweep.dir={root}"]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = slurm_job_id(name)
    deadline = time.monotonic() + 180
    while not list(root.glob("*/checkpoints/last.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.2)
    last = next(root.glob("*/checkpoints/last.ckpt"))
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    wait_for_state(job_id, "PENDING")  # a requeued job is held for about 2 minutes; release it now
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    job_dir = last.parent.parent
    log = (job_dir / "train.log").read_text()
    assert log.count("Output directory") == 2 and f"Resuming from {last}" in log
    metrics = strict_json(job_dir / "metrics.json")
    assert metrics["status"] == "ok" and metrics["epochs"] == 4
    assert torch.load(last, weights_only=True)["global_step"] == 4 * 150


def test_two_task_ddp_under_srun_logs_the_test_kl_of_one_process(slurm, tmp_path, real_data_dir):
    from betavae.loss import gaussian_kl
    from betavae.runs import load_run

    run = tmp_path / "ddp"
    srun = ["srun", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--mem=4G"]
    train = [sys.executable, "-m", "betavae.train", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
             "trainer.max_epochs=1", "trainer.limit_train_batches=5", "trainer.limit_val_batches=1", "callbacks=none",
             "fid=none", f"hydra.run.dir={run}"]  # fmt: skip
    result = subprocess.run(srun + train, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in result.stdout + result.stderr
    module, cfg, _ = load_run(run)
    x = instantiate(cfg.data, root=str(real_data_dir)).images("test")[0]
    with torch.no_grad():
        kl = float(gaussian_kl(*module.net.encode(x)).sum(1).mean())
    assert strict_json(run / "metrics.json")["test/kl"] == pytest.approx(kl, rel=1e-4)
