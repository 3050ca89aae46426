"""What one job needs from its process and its devices: a lock on its directory, SIGTERM as an exception, a
share of the cores, its GPU, and the checks of how Lightning would place it (DDP launches, emulated bfloat16)."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import lightning.pytorch as pl
import torch
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from betavae.base.errors import ConfigError, LaunchRefused, RunError, Terminated
from betavae.runs.layout import JobDir

log = logging.getLogger(__name__)


@contextmanager
def job_lock(directory: Path) -> Iterator[Callable[[], None]]:
    """Hold ``<directory>/.lock`` (an flock, so a killed job never leaves it stale) while the job runs; a second
    run in the same directory is refused instead of mixing its checkpoints and events with the first one's.
    Only rank 0 of a distributed job takes it. Yields a function that releases it early (a job that recorded its
    end, before it summarises its sweep)."""
    if rank_zero_only.rank != 0:
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


def end_process_group() -> None:
    """Destroy this process's DDP process group, on every way out: left to interpreter exit, gloo's threads can
    abort the process (pytorch#190489)."""
    if in_process_group():
        torch.distributed.destroy_process_group()


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs the launcher runs at once on this machine (joblib's n_jobs; 1 for the others)."""
    n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1)
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs or 1)


def check_launch(trainer: pl.Trainer, hydra_cfg: DictConfig) -> None:
    """Refuse, before any work, DDP in a multirun when Lightning starts the processes itself: it re-runs the
    command line for each, `-m` and the sweep included, so each process would run a sweep of its own."""
    launcher = trainer.strategy.launcher
    if (
        hydra_cfg.mode == RunMode.MULTIRUN
        and isinstance(launcher, _SubprocessScriptLauncher)
        and not launcher.cluster_environment.creates_processes_externally
        and launcher.num_processes > 1
    ):
        raise LaunchRefused(
            f"trainer.strategy=ddp on {launcher.num_processes} devices starts its processes by re-running the "
            "command, which a multirun (-m) cannot do: sweep with hydra/launcher=slurm (one task per device), "
            "or run each job alone (python -m betavae.train trainer=ddp hydra.run.dir=<dir> ...)"
        )


def warn_slow_precision(trainer: pl.Trainer) -> None:
    """Warn when bfloat16 would run emulated, far slower than float32, on a CPU without bfloat16 instructions
    (docs/sweeps.md, GPU and multi-GPU)."""
    precision = str(trainer.precision)
    if precision.startswith("bf16") and isinstance(trainer.accelerator, CPUAccelerator) and not cpu_has_bf16():
        log.warning(
            "trainer.precision=%s on a CPU without bfloat16 instructions (AVX512-BF16 or AMX): its matrix "
            "products are emulated, far slower than with trainer.precision=32-true",
            precision,
        )


def stop_other_processes(trainer: pl.Trainer) -> None:
    """Kill the DDP processes this one started, so none is left waiting for it in a collective (NCCL would
    wait 30 minutes); a no-op in a process that started none."""
    if isinstance(launcher := trainer.strategy.launcher, _SubprocessScriptLauncher):
        launcher.kill(signal.SIGKILL)
