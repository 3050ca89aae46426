"""What one job needs from its process: a lock on its directory, SIGTERM as an exception, its rank, how many jobs
share the machine, and its DDP process group's end. It imports neither torch nor Lightning, so a job can refuse
its config before either is imported; a torch that is not imported yet has no process group."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from omegaconf import DictConfig, OmegaConf

from betavae.base.errors import ConfigError, RunError, Terminated
from betavae.runs.layout import JobDir

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")  # as Lightning reads a process's rank


def rank() -> int:
    """This process's rank in its distributed job (0 alone): Lightning's, once it has set it, else what the
    launcher put in the environment, as Lightning reads it at its start."""
    if (rank_zero := sys.modules.get("lightning.fabric.utilities.rank_zero")) is not None:
        return rank_zero.rank_zero_only.rank
    return next((int(os.environ[name]) for name in RANK_VARIABLES if name in os.environ), 0)


@contextmanager
def job_lock(directory: Path) -> Iterator[Callable[[], None]]:
    """Hold ``<directory>/.lock`` (an flock, so a killed job never leaves it stale) while the job runs; a second
    run in the same directory is refused instead of mixing its checkpoints and events with the first one's.
    Only rank 0 of a distributed job takes it. Yields a function that releases it early (a job that recorded its
    end, before it summarises its sweep)."""
    if rank() != 0:
        yield lambda: None
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = JobDir(Path(directory)).lock
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RunError(f"{path}: another run is using this directory ({f.read().strip() or 'unknown'})") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        yield lambda: fcntl.flock(f, fcntl.LOCK_UN)


class Sigterm:
    """SIGTERM as `Terminated`, its line ending in ``resume`` (what continues the job): raised where the signal
    lands, or, while `deferred` holds (training) and Lightning's handler calls this one, where Lightning's loop
    stops for it: after a batch, or after an epoch's checkpoint and logged means, never between the two (the
    continuation would start after an epoch whose means no logger got)."""

    def __init__(self, resume: str) -> None:
        self.resume, self.deferring, self.received = resume, False, False

    def error(self) -> Terminated:
        """The exception the job stops with."""
        return Terminated(f"terminated by SIGTERM; {self.resume}")

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if not self.deferring or signal.getsignal(signal.SIGTERM) is self:  # no Lightning loop listens yet
            raise self.error()

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Leave a SIGTERM to Lightning's training loop while the block runs and Lightning's handler (which notes
        it, then calls this one) is installed, and raise `Terminated` in place of the SystemExit the loop stops
        with, or once the block ends (a signal during fitting's last hooks)."""
        self.deferring = True
        try:
            yield
        except SystemExit:  # Lightning's SIGTERMException
            if not self.received:
                raise
            raise self.error() from None
        finally:
            self.deferring = False
        if self.received:
            raise self.error()


@contextmanager
def raise_on_sigterm(resume: str) -> Iterator[Sigterm]:
    """Turn SIGTERM into `Terminated` (`Sigterm`) while the block runs, unless someone else handles it (submitit
    does): then the `Sigterm` given is never called, and its `deferred` changes nothing."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield Sigterm(resume)
        return
    sigterm = Sigterm(resume)
    signal.signal(signal.SIGTERM, sigterm)
    try:
        yield sigterm
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs the launcher runs at once on this machine (joblib's n_jobs; 1 for the others)."""
    n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1)
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs or 1)


def in_process_group() -> bool:
    """Whether this process is one of a distributed (DDP) job's, with its process group running (never before
    torch is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


def end_process_group() -> None:
    """Destroy this process's DDP process group, on every way out: left to interpreter exit, gloo's threads can
    abort the process (pytorch#190489)."""
    if in_process_group():
        sys.modules["torch"].distributed.destroy_process_group()


def job_gpu(job_num: int) -> list[int]:
    """trainer.devices for job ``job_num`` of a sweep (``${job_gpu:${hydra:job.num}}``, trainer=gpu_per_job): GPU
    k mod the number of visible GPUs, so any number of jobs spread over the GPUs."""
    import torch  # when the trainer's devices are resolved, after the job's checks

    if not (count := torch.cuda.device_count()):
        raise ConfigError("trainer=gpu_per_job needs a CUDA GPU, and none is visible (trainer=cpu runs on the CPU)")
    return [job_num % count]
