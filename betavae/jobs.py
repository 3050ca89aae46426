"""What one job needs from its process: a lock on its directory, SIGTERM as an exception, a share of the cores,
its GPU."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only

from betavae.config import ConfigError
from betavae.files import RunError


class Terminated(SystemExit):
    """SIGTERM arrived (`timeout`, `kill`, Slurm): the job stops, keeping its last finished epoch's checkpoint."""


@contextmanager
def job_lock(directory: Path) -> Iterator[None]:
    """Hold ``<directory>/.lock`` (an flock, so a killed job never leaves it stale) while the job runs; a second
    run in the same directory is refused instead of mixing its checkpoints and events with the first one's.
    Only rank 0 of a distributed job takes it."""
    if rank_zero_only.rank != 0:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".lock"
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
        yield


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while the block runs, unless someone else handles it (submitit does)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise Terminated("terminated by SIGTERM; run the same command again to continue from last.ckpt")

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def set_threads(parallel_jobs: int) -> int:
    """Give each of ``parallel_jobs`` jobs sharing this machine an equal share of its cores as torch threads, so
    they do not oversubscribe them; returns the share."""
    if parallel_jobs > 1:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // parallel_jobs))
    return torch.get_num_threads()


def job_gpu(job_num: int) -> list[int]:
    """trainer.devices for job ``job_num`` of a sweep (``${job_gpu:${hydra:job.num}}``, trainer=gpu_per_job): GPU
    k mod the number of visible GPUs, so any number of jobs spread over the GPUs."""
    if not (count := torch.cuda.device_count()):
        raise ConfigError("trainer=gpu_per_job needs a CUDA GPU, and none is visible (trainer=cpu runs on the CPU)")
    return [job_num % count]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it. (Here, not in the
    entry point: launchers pickle `__main__`'s functions by value, and `torch.ops` does not pickle.)"""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def in_process_group() -> bool:
    """Whether this process is one of a distributed (DDP) job's, with its process group running."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()
