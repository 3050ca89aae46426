"""`hydra/launcher=slurm`: hydra-submitit-launcher's Slurm launcher, quiet and correct without Slurm accounting.

submitit asks `sacct` for job states. Where accounting is off (small clusters, the local test cluster) every
poll fails, floods the log with warnings, and a job killed without a result is never seen to end; there the
states come from `squeue` instead. (Hydra instantiates launchers only from classes its plugin scan finds in
the hydra_plugins package, hence this location.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

try:  # the `slurm` extra; without it Hydra's plugin scan must not warn at every start
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as SubmititSlurmLauncher
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob
except ImportError:
    SubmititSlurmLauncher = None

if SubmititSlurmLauncher is not None:
    from hydra.core.utils import JobReturn

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
        """hydra-submitit-launcher's SlurmLauncher, polling with `squeue` where accounting is off."""

        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            if not accounting_enabled():
                SlurmJob.watcher = SqueueWatcher(delay_s=600)  # submitit keeps its poller on the job class
            return super().launch(job_overrides, initial_job_idx)
