"""Figures as arrays: headless matplotlib rendering, image grids, PNG files."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid


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


def write_png(directory: Path, name: str, image: np.ndarray) -> Path:
    """Write ``<directory>/<name>.png``."""
    directory.mkdir(parents=True, exist_ok=True)
    iio.imwrite(directory / f"{name}.png", image)
    return directory / f"{name}.png"
