"""What one job needs from its devices: a share of the cores, its GPU, and the checks of how Lightning would place
it (DDP launches, emulated bfloat16)."""

from __future__ import annotations

import logging
import os
import signal

import lightning.pytorch as pl
import torch
from hydra.types import RunMode
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig

from betavae.base.errors import LaunchRefused

log = logging.getLogger(__name__)


def set_threads(parallel_jobs: int) -> int:
    """Give each of ``parallel_jobs`` jobs sharing this machine an equal share of its cores as torch threads, so
    they do not oversubscribe them; returns the share."""
    if parallel_jobs > 1:
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // parallel_jobs))
    return torch.get_num_threads()


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), as oneDNN sees it. (Here, not in the
    entry point: launchers pickle `__main__`'s functions by value, and `torch.ops` does not pickle.)"""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


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
