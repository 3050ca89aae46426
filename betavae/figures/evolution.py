"""Latent-space evolution: posterior means of fixed images at several epochs, projected to 2-D on shared axes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy.linalg import orthogonal_procrustes

from betavae.base.plotting import new_figure, render
from betavae.metrics import registry

Limits = tuple[tuple[float, float], tuple[float, float]]


class Frame(NamedTuple):
    """One snapshot: the epoch count reached, the posterior means [N, D], and val/loss (None before training)."""

    epoch: int
    mu: np.ndarray
    val_loss: float | None


def pca_2d(points: np.ndarray) -> np.ndarray:
    """Coordinates of centred points on their first two principal axes, [N, 2]."""
    centred = points - points.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def aligned_projections(frames: list[np.ndarray]) -> list[np.ndarray]:
    """2-D views of each frame, rotated/reflected onto the last frame's view by orthogonal Procrustes.

    Per-frame PCA shows each frame's own structure; the alignment removes the sign flips and rotations
    that PCA is free to make from one frame to the next. Latent spaces of dimension 2 are shown as they are, of
    dimension 1 against a random spread.
    """
    dims = frames[-1].shape[1]
    if dims == 1:  # one latent: its value across, and each image spread up or down at random, the same each frame
        spread = np.random.default_rng(0).uniform(-1, 1, len(frames[-1]))
        return [np.column_stack([f[:, 0] - f[:, 0].mean(), spread]) for f in frames]
    if dims == 2:
        return [f - f.mean(0) for f in frames]
    views = [pca_2d(f) for f in frames]
    target = views[-1]
    return [view @ orthogonal_procrustes(view, target)[0] for view in views]


def shared_limits(views: list[np.ndarray], margin: float = 0.05) -> Limits:
    """One (xlim, ylim) that contains every frame, so frames can be compared."""
    stacked = np.concatenate(views)
    low, high = stacked.min(0), stacked.max(0)
    pad = (high - low) * margin + 1e-6
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


def draw_frame(
    view: np.ndarray, frame: Frame, labels: np.ndarray, classes: Sequence[int], names: Sequence[str],
    limits: Limits, label: str,
) -> np.ndarray:  # fmt: skip
    """One frame: a scatter per class with a legend, fixed limits, the objective's label, epoch and val/loss in the
    title."""
    fig = new_figure(5.5, 5.0)
    ax = fig.add_subplot()
    for c in classes:
        points = view[labels == c]
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, label=names[c], rasterized=True)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    title = f"{label} · epoch {frame.epoch}"
    if frame.val_loss is not None:
        title += f" · {registry.VAL_LOSS} {frame.val_loss:.1f} nats"
    elif frame.epoch == 0:
        title += " · before training"
    ax.set_title(title)
    dims = frame.mu.shape[1]
    ax.set_xlabel("z₁" if dims <= 2 else "PC 1 (aligned)")
    ax.set_ylabel({1: "(random spread: one latent)", 2: "z₂"}.get(dims, "PC 2 (aligned)"))
    ax.legend(loc="upper right", markerscale=3)
    return render(fig)


def evolution_images(
    frames: list[Frame], labels: np.ndarray, classes: Sequence[int], names: Sequence[str], label: str
) -> list[np.ndarray]:
    """Every frame drawn on the aligned projections and one set of axis limits."""
    views = aligned_projections([f.mu for f in frames])
    limits = shared_limits(views)
    return [draw_frame(view, frame, labels, classes, names, limits, label)
            for view, frame in zip(views, frames, strict=True)]  # fmt: skip
