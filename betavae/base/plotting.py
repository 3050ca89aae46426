"""Drawing without a display: matplotlib figures outside pyplot's global state, rasterised to RGB arrays, and
image grids. Knows nothing of models, so summaries can plot without importing them."""

from __future__ import annotations

from collections.abc import Sequence
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


def image_grid(images: torch.Tensor, nrow: int, shape: Sequence[int]) -> np.ndarray:
    """Flattened images [N, C·H·W] in [0, 1] (a torch tensor) of ``shape`` (C, H, W), gray or RGB, as one HWC
    uint8 grid, torchvision's make_grid (imported here, so modules that only plot never import torchvision)."""
    import torch
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().view(-1, *shape), nrow=nrow, padding=2, pad_value=1.0)
    return (grid.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def heatmap(values: np.ndarray, columns: Sequence[str], rows: Sequence[str], title: str) -> np.ndarray:
    """A [rows, columns] array of values in [0, 1] as a heatmap with each value written in its cell (the latent ×
    factor information of the disentanglement scores)."""
    fig = new_figure(1.2 * len(columns) + 2, 0.35 * len(rows) + 1.6)
    ax = fig.add_subplot()
    shown = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for (r, c), value in np.ndenumerate(values):
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color="white" if value < 0.5 else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_title(title)
    fig.colorbar(shown, ax=ax)
    return render(fig)
