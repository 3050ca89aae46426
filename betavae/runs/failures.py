"""How a job ends when something goes wrong: which failures users can act on (reported in one line, recorded in
the job's metrics.json) and which are bugs (a traceback), which DDP process records it, and whether the command
exits or a sweep goes on with its other jobs."""

from __future__ import annotations

import errno
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.types import RunMode
from omegaconf import DictConfig

from betavae.base.config import config_error
from betavae.base.errors import DataError, JobStopped, Refused, RunError, SweepRefused, Terminated, first_line
from betavae.base.files import disk_full
from betavae.runs import process
from betavae.runs.continuation import record_failure
from betavae.runs.layout import RunRecord, Status

log = logging.getLogger(__name__)


def known_failures() -> tuple[type[BaseException], ...]:
    """The errors reported in one line: ours, and running out of memory (torch's too, once torch is imported: a
    job stopped before importing it cannot have met one)."""
    torch = sys.modules.get("torch")
    return (DataError, RunError, MemoryError, *((torch.OutOfMemoryError,) if torch is not None else ()))


def failure(
    err: BaseException, cfg: DictConfig, resume: str = "run the same command again"
) -> tuple[Status, str] | None:
    """(status, one-line reason) for a failure users can act on; None for an unexpected error (a bug). An
    interruption's reason ends in ``resume``, what continues the job."""
    if isinstance(err, Terminated):
        return Status.INTERRUPTED, str(err)
    if isinstance(err, SystemExit | KeyboardInterrupt):  # Lightning's own SIGTERM and Ctrl-C exits
        return Status.INTERRUPTED, f"interrupted ({type(err).__name__}); {resume}"
    if (message := config_error(err, cfg)) is not None:
        return Status.FAILED, f"Invalid config: {message}"
    known = known_failures()
    while err is not None and not isinstance(err, known):
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # a writer we do not own (TensorBoard's)
            err = disk_full(Path(err.filename or "."))
            break
        err = err.__cause__ or err.__context__
    return None if err is None else (Status.FAILED, first_line(err))


def is_peer_failure(err: BaseException) -> bool:
    """Did this DDP process fail because another one did? Then a collective of its running process group broke
    under it: torch.distributed raised (NCCL's DistError, or gloo's RuntimeError "Connection closed by peer")."""
    if not process.in_process_group():
        return False
    dist_error = sys.modules["torch"].distributed.DistError  # imported: it has a process group
    while err is not None:
        frames = traceback.extract_tb(err.__traceback__)
        if isinstance(err, dist_error) or (frames and "/torch/distributed/" in frames[-1].filename):
            return True
        err = err.__cause__ or err.__context__
    return False


def recorded_failure(output_dir: Path, since: float) -> str | None:
    """The reason in metrics.json if a process of this job recorded a failure there at or after ``since``."""
    record = RunRecord.read(output_dir)
    if record is None or record.finished or (output_dir / RunRecord.FILE).stat().st_mtime < since:
        return None
    return record.reason


def stop(
    err: BaseException,
    cfg: DictConfig,
    output_dir: Path,
    started: float,
    hydra_cfg: DictConfig,
    interrupted_sweep: Callable[[], None],
    resume: str = "run the same command again",
) -> RunRecord | None:
    """Record a job's failure once and end it in one line (`JobStopped`). The process whose own fault it is
    records it: rank 0, or another rank (its reason prefixed "rank N: ") unless a process of this job already
    recorded one; a process stopped by another's failure records nothing and repeats that one's reason. In a
    multirun the sweep goes on with its other jobs (returns the job's record; None for a job refused before any
    work), unless every job would fail alike or the sweep was interrupted (then ``interrupted_sweep`` gives up the
    job's lock and summarises the sweep, which lists it as stopped). A bug is raised as it is (a traceback)."""
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if isinstance(err, SweepRefused):  # every job of the sweep would be refused alike
        raise JobStopped(f"error: {err}") from None
    if isinstance(err, Refused):  # before any work: nothing to record, the directory keeps what it holds
        log.error("Job refused: %s", err)
        if multirun:
            return None
        raise JobStopped(f"error: {err}") from None
    if is_peer_failure(err):
        reason = recorded_failure(output_dir, started) or f"another DDP process failed ({first_line(err)})"
        log.error("Job stopped: %s", reason)
        raise JobStopped(f"error: {reason}") from None
    known = failure(err, cfg, resume)
    status, reason = known or (Status.FAILED, f"{type(err).__name__}: {err}")
    rank = process.rank()
    if rank > 0:
        reason = f"rank {rank}: {reason}"
    if rank == 0 or recorded_failure(output_dir, started) is None:
        record_failure(output_dir, cfg, hydra_cfg, status, reason)
    log.error("Job %s: %s", status, reason, exc_info=known is None)
    if status is Status.INTERRUPTED and multirun and rank == 0:  # the remaining jobs will not run: summarise them
        interrupted_sweep()
    if multirun and status is not Status.INTERRUPTED:
        return RunRecord.read(output_dir)
    if known is None:
        raise err
    raise JobStopped(reason if reason.startswith("Invalid config") else f"error: {reason}") from None
