"""Drawing without a display: matplotlib figures outside pyplot's global state, rasterised to RGB arrays, and
image grids. Knows nothing of models, so summaries can plot without importing them."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import torch


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
    """Flattened square gray images [N, side²] in [0, 1] (a torch tensor) as one HWC uint8 grid, torchvision's
    make_grid (imported here, so modules that only plot never import torchvision)."""
    import torch
    from torchvision.utils import make_grid

    side = math.isqrt(images.shape[-1])
    grid = make_grid(images.detach().float().cpu().view(-1, 1, side, side), nrow=nrow, padding=2, pad_value=1.0)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
