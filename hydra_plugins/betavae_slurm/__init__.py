"""`hydra/launcher=slurm`: hydra-submitit-launcher's Slurm launcher, quiet without Slurm accounting, and saying
in one line when Slurm refuses a job or keeps one pending that no node can ever run.

submitit asks `sacct` for job states. Where accounting is off (small clusters, the local test cluster) every
poll fails, floods the log with warnings, and a job killed without a result is never seen to end; there the
states come from `squeue` instead. (Hydra instantiates launchers only from classes its plugin scan finds in
the hydra_plugins package, hence this location.)
"""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

try:  # the `slurm` extra; without it Hydra's plugin scan must not warn at every start
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
    from submitit.core.utils import UncompletedJobError
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob
except ImportError:
    SubmititSlurmLauncher = None

log = logging.getLogger(__name__)
# Pending reasons of a job that no node of its partition can ever run as requested (Slurm's squeue(1)); a job
# pending for any other reason (Resources, Priority, BeginTime, ...) may still start.
IMPOSSIBLE = ("PartitionConfig", "PartitionNodeLimit", "PartitionTimeLimit", "ReqNodeNotAvail", "BadConstraints",
              "InvalidQOS", "InvalidAccount")  # fmt: skip


def pending_reason(job_id: str) -> str | None:
    """Why Slurm keeps the job pending (squeue's %r), None once it is not pending or squeue cannot tell."""
    out = subprocess.run(["squeue", "-h", "-t", "PD", "-j", job_id, "-o", "%r"], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def impossible(reason: str | None) -> bool:
    """Whether a pending reason means the job can never start (ReqNodeNotAvail comes with the nodes' names)."""
    return reason is not None and reason.split(",")[0].split(" ")[0] in IMPOSSIBLE


def lost_reason(job_id: str, err: BaseException) -> str:
    """One line for a job that ended without a result (killed, out of memory, node failure): its state and the
    last line of its error stream, from submitit's several-line message."""
    state = re.search(r"\(state: (\w+)\)", str(err))
    lines = [line.strip() for line in str(err).splitlines() if line.strip() and not line.startswith("---")]
    cause = lines[-1] if len(lines) > 1 else "no error output"
    return f"Slurm job {job_id} ended without a result (state {state.group(1) if state else 'unknown'}): {cause}"


def submission_error(err: BaseException) -> str | None:
    """sbatch's own error line behind a failed submission ("Requested node configuration is not available")."""
    lines = re.findall(r"sbatch: error: (.+)", str(err))
    return "; ".join(line.strip() for line in lines) or None


if SubmititSlurmLauncher is not None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import open_dict

    from betavae.runs.continuation import record_failure
    from betavae.runs.layout import Status

    class SqueueWatcher(SlurmInfoWatcher):
        """submitit's job-state poller, reading `squeue` (which knows jobs until MinJobAge after they end)."""

        def _make_command(self) -> list[str] | None:
            if not self._registered - self._finished:
                return None
            return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N"]

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            """squeue's lines in sacct's layout, parsed by submitit (array ranges included)."""
            text = string.decode() if isinstance(string, bytes) else string
            return super().read_info("JobID|State|NodeList\n" + text)

    def accounting_enabled() -> bool:
        """Whether the cluster keeps accounting, so that `sacct` answers."""
        try:
            config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return True  # cannot tell: keep submitit's default
        return "accounting_storage/none" not in config.stdout

    class SlurmLauncher(SubmititSlurmLauncher):
        """hydra-submitit-launcher's SlurmLauncher, polling with `squeue` where accounting is off. A job Slurm can
        never start is ended, and one that ends without a result (killed) is not a crash of the sweep: either is
        recorded as failed in its metrics.json, and the other jobs go on."""

        poll_s = 2.0

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            if not accounting_enabled():
                SlurmJob.watcher = SqueueWatcher(delay_s=600)  # submitit keeps its poller on the job class
            waited: list[SlurmJob] = []
            original, launcher = SlurmJob.results, self

            def results(job: SlurmJob) -> list[JobReturn]:
                """The job's results once it has run; for one Slurm can never start, or one without a result, its
                failure is recorded instead."""
                index = len(waited)  # the upstream launch asks for each job's results in order
                waited.append(job)
                overrides = list(job_overrides[index])
                if (reason := launcher.wait_startable(job)) is not None:
                    message = (f"Slurm job {job.job_id} cannot start: pending with reason {reason}, which no node "
                               "of the partition can satisfy; cancelled (lower hydra.launcher.cpus_per_task, "
                               "mem_gb or gpus_per_node, or choose hydra.launcher.partition)")  # fmt: skip
                else:
                    try:
                        return original(job)
                    except UncompletedJobError as err:
                        message = lost_reason(job.job_id, err)
                launcher.record_failed(overrides, initial_job_idx + index, message)
                return [JobReturn(overrides=overrides, status=JobStatus.COMPLETED, _return_value=None)]

            # The upstream launch submits, then waits on each job's results() in one expression, which would
            # wait forever on a job that can never start: for this launch, results() first checks that.
            SlurmJob.results = results
            try:
                return super().launch(job_overrides, initial_job_idx)
            except Exception as err:
                if (message := submission_error(err)) is None:
                    raise
                raise SystemExit(f"error: Slurm refused the jobs: {message} (hydra.launcher: cpus_per_task, "
                                 "mem_gb, gpus_per_node, partition, timeout_min)") from None  # fmt: skip
            finally:
                SlurmJob.results = original

        def wait_startable(self, job: SlurmJob) -> str | None:
            """Wait while the job pends; return the reason if Slurm says it can never start (the job cancelled)."""
            while (reason := pending_reason(job.job_id)) is not None:
                if impossible(reason):
                    job.cancel(check=False)
                    return reason
                time.sleep(self.poll_s)
            return None

        def record_failed(self, overrides: list[str], job_num: int, message: str) -> None:
            """Log in one line, and record in the job's metrics.json (unless it holds a finished run), why the
            job has no result."""
            log.error("#%d %s: %s", job_num, " ".join(overrides), message)
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
            with open_dict(cfg.hydra.job):
                cfg.hydra.job.num = job_num
            HydraConfig.instance().set_config(cfg)  # as Hydra's run_job does, to resolve the job's directory
            job_dir = Path(cfg.hydra.sweep.dir) / str(cfg.hydra.sweep.subdir)
            task_cfg = copy.deepcopy(cfg)
            with open_dict(task_cfg):
                del task_cfg["hydra"]
            record_failure(job_dir, task_cfg, HydraConfig.get(), Status.FAILED, message)
