"""Where figures go: PNG files under the job's figures/ and images in TensorBoard, from one rendering."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid

from betavae.model import MLPVAE


def figure_dir(trainer: pl.Trainer) -> Path:
    """The job's figures/ directory (under the trainer's root, the Hydra output directory), created on demand."""
    path = Path(trainer.default_root_dir) / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure on the headless Agg canvas, outside pyplot's global state."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def render(fig: Figure) -> np.ndarray:
    """Rasterise a figure to an RGB uint8 array."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def image_grid(images: torch.Tensor, nrow: int) -> np.ndarray:
    """Flattened 28×28 images in [0, 1] as one HWC uint8 grid (torchvision's make_grid)."""
    grid = make_grid(images.detach().float().cpu().view(-1, 1, 28, 28), nrow=nrow, padding=2, pad_value=1.0)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def publish(trainer: pl.Trainer, name: str, image: np.ndarray, step: int | None = None) -> Path | None:
    """Write ``figures/<name>.png`` and add it to every TensorBoard logger's images (global rank zero only)."""
    if not trainer.is_global_zero:
        return None
    path = figure_dir(trainer) / f"{name}.png"
    iio.imwrite(path, image)
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


@torch.no_grad()
def decode_mean(model: MLPVAE, z: torch.Tensor) -> torch.Tensor:
    """Pixel means σ(decoder(z)) in [0, 1]: what images of the model show."""
    return torch.sigmoid(model.decode(z))


def split_images(trainer: pl.Trainer, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """All images (flattened, float in [0, 1]) and labels of one split of the trainer's datamodule."""
    images, labels = trainer.datamodule.splits[split]
    return images.to(device).flatten(1).float() / 255, labels.to(device)


def first_per_class(labels: torch.Tensor, classes: list[int], per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class, class by class."""
    picks = [torch.nonzero(labels == c).flatten()[:per_class] for c in classes]
    return torch.cat(picks)
