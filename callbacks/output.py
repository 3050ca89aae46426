"""Where a run's figures go (PNG files under the job's figures/ and TensorBoard images) and what they draw on."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from betavae.figures import write_png
from betavae.model import MLPVAE


def figure_dir(trainer: pl.Trainer) -> Path:
    """The job's figures/ directory (under the trainer's root, the Hydra output directory), created on demand."""
    path = Path(trainer.default_root_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def due(trainer: pl.Trainer, every_n_epochs: int) -> bool:
    """True at the end of every ``every_n_epochs``-th epoch (never for 0), before the last: fit end draws that."""
    epochs_done = trainer.current_epoch + 1
    return bool(every_n_epochs) and epochs_done % every_n_epochs == 0 and epochs_done < trainer.max_epochs


def publish(trainer: pl.Trainer, name: str, image: np.ndarray, step: int | None = None) -> Path | None:
    """Write ``figures/<name>.png`` and add it to every TensorBoard logger's images (global rank zero only)."""
    if not trainer.is_global_zero:
        return None
    path = write_png(figure_dir(trainer), name, image)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(
                name, image, global_step=trainer.global_step if step is None else step, dataformats="HWC"
            )
    return path


def log_scalars(trainer: pl.Trainer, metrics: dict[str, float]) -> None:
    """Send scalars computed outside a logging hook (e.g. at fit end) straight to the loggers."""
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step)


def device_of(model: torch.nn.Module) -> torch.device:
    """The device a model's parameters are on."""
    return next(model.parameters()).device


@torch.no_grad()
def decode_mean(model: MLPVAE, z: torch.Tensor) -> torch.Tensor:
    """Pixel means σ(decoder(z)) in [0, 1]: what images of the model show."""
    return torch.sigmoid(model.decode(z))


def split_images(
    datamodule: pl.LightningDataModule, split: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (flattened, float in [0, 1]) and labels of one split of a set-up FashionMNISTDataModule."""
    images, labels = datamodule.splits[split]
    return images.to(device).flatten(1).float() / 255, labels.to(device)


def first_per_class(labels: torch.Tensor, classes: list[int], per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class, class by class."""
    picks = [torch.nonzero(labels == c).flatten()[:per_class] for c in classes]
    return torch.cat(picks)
