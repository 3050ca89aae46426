"""Where callbacks put what they make: the job's figures/ directory and every logger."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np

from betavae.base.files import write_json, write_png
from betavae.loggers.job import log_file, log_image
from betavae.runs.layout import JobDir


def figure_dir(trainer: pl.Trainer) -> Path:
    """The job's figures/ directory, under the trainer's root (the Hydra output directory)."""
    return JobDir(Path(trainer.default_root_dir)).figures


def publish(trainer: pl.Trainer, name: str, image: np.ndarray, step: int | None = None) -> Path | None:
    """Write ``figures/<name>.png`` and add it to every logger's images (global rank zero only)."""
    if not trainer.is_global_zero:
        return None
    path = write_png(figure_dir(trainer), name, image)
    for logger in trainer.loggers:
        log_image(logger, name, image, trainer.global_step if step is None else step)
    return path


def publish_file(trainer: pl.Trainer, path: Path) -> None:
    """Give a file the callbacks wrote (the evolution GIF) to every logger that keeps files (global rank zero)."""
    if trainer.is_global_zero:
        for logger in trainer.loggers:
            log_file(logger, path)


def publish_json(trainer: pl.Trainer, name: str, data: Any) -> None:
    """Write ``figures/<name>.json`` (global rank zero only)."""
    if trainer.is_global_zero:
        write_json(figure_dir(trainer) / f"{name}.json", data)


def log_scalars(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    """Send scalars computed outside a logging hook (e.g. at fit end) straight to the loggers."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)


def from_rank_zero(trainer: pl.Trainer, compute: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Metrics computed by global rank 0 alone and sent to every rank, to log alike: every rank holds all the
    data, so the others would only repeat the work (the probe, FID)."""
    return trainer.strategy.broadcast(compute() if trainer.is_global_zero else None, src=0)
