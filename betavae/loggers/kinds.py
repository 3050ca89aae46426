"""What each kind of logger does beyond Lightning's scalars, each kind owning it: the figures, a file, the
hyperparameters with the final test metrics, the end of its run, and what reopens its run in its store. `Kind`
holds the defaults (what any Lightning logger does: hyperparameters alone, finalize at the end), `kind` gives a
logger its behaviour, and the local kinds are here: TensorBoard (images, the HPARAMS tab with the test metrics)
and CSV; the trackers, MLflow and W&B, are `betavae.loggers.trackers`'."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch.loggers as lightning_loggers
import numpy as np
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig

from betavae.loggers.tracking import TrackedRuns


class Kind:
    """A logger's behaviour beyond scalars, mixed into a Lightning logger class (or `Plain` around another)."""

    extra: str | None = None  # the extra (and package) it needs: a tracker's, whose runs live in a store

    @classmethod
    def configured_store(cls, node: DictConfig) -> str | None:
        """Where the runs of a logger configured by ``node`` live (None: in the job directory)."""
        return None

    def publish_image(self, name: str, image: np.ndarray, step: int) -> None:
        """Add an HWC uint8 image at ``step`` (none: the job's figures/ have it)."""

    def publish_file(self, path: Path) -> None:
        """Attach a file to the run (none: the job directory has it)."""

    def publish_results(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """The hyperparameters with the final test metrics."""
        self.log_hyperparams(hparams)

    def end_run(self, status: str) -> None:
        """End the run on every way out of the job."""
        self.finalize(status)

    def record_run(self, name: str, runs: TrackedRuns) -> None:
        """Record in ``runs`` what reopens this run in its store (none: a local logger's job directory is it)."""

    def record_missed(self, name: str, runs: TrackedRuns) -> None:
        """Record in ``runs`` what this part of the job could not send (none: a local logger misses nothing)."""


class Plain(Kind):
    """Any other Lightning logger (a user's own class), with the defaults."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def log_hyperparams(self, params: Any) -> None:
        self.logger.log_hyperparams(params)

    def finalize(self, status: str) -> None:
        self.logger.finalize(status)


class TensorBoardLogger(Kind, lightning_loggers.TensorBoardLogger):
    """Lightning's TensorBoardLogger: figures in its images tab, the final test metrics in its HPARAMS tab."""

    def publish_image(self, name: str, image: np.ndarray, step: int) -> None:
        self.experiment.add_image(name, image, global_step=step, dataformats="HWC")

    def publish_results(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.log_hyperparams(hparams, metrics)


class CSVLogger(Kind, lightning_loggers.CSVLogger):
    """Lightning's CSVLogger: scalars and hyperparameters."""


class LightningTensorBoard(Plain):
    """Lightning's own TensorBoardLogger (configs before 0.12 built it; a Trainer of one's own may): images and the
    test metrics in the HPARAMS tab, as ours."""

    def publish_image(self, name: str, image: np.ndarray, step: int) -> None:
        TensorBoardLogger.publish_image(self.logger, name, image, step)

    def publish_results(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        self.logger.log_hyperparams(hparams, metrics)


def kind(logger: Logger) -> Kind:
    """The logger's behaviour: its own, for a kind of ours; TensorBoard's, for Lightning's; else the defaults."""
    if isinstance(logger, Kind):
        return logger
    return (LightningTensorBoard if isinstance(logger, lightning_loggers.TensorBoardLogger) else Plain)(logger)
