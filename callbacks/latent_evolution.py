"""Latent-space evolution: posterior means of fixed validation images, frame by frame, as PNG and GIF."""

from __future__ import annotations

from typing import NamedTuple

import imageio.v3 as iio
import lightning.pytorch as pl
import numpy as np
from scipy.linalg import orthogonal_procrustes

from betavae.data import CLASS_NAMES
from betavae.figures import new_figure, render
from betavae.latents import encode
from callbacks.output import figure_dir, first_per_class, publish, split_images


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
    that PCA is free to make from one frame to the next. Latent spaces of dimension 2 are shown as they are.
    """
    if frames[-1].shape[1] == 2:
        return [f - f.mean(0) for f in frames]
    views = [pca_2d(f) for f in frames]
    target = views[-1]
    return [view @ orthogonal_procrustes(view, target)[0] for view in views]


def shared_limits(views: list[np.ndarray], margin: float = 0.05) -> tuple[tuple[float, float], tuple[float, float]]:
    """One (xlim, ylim) that contains every frame, so frames can be compared."""
    stacked = np.concatenate(views)
    low, high = stacked.min(0), stacked.max(0)
    pad = (high - low) * margin + 1e-6
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (float(low[1] - pad[1]), float(high[1] + pad[1]))


class LatentEvolution(pl.Callback):
    """Encode fixed validation images before training and every N epochs; write frames, PNG and GIF at fit end."""

    def __init__(
        self,
        classes: list[int] = (0, 1, 2),
        per_class: int = 1000,
        every_n_epochs: int = 1,
        fps: float = 2.0,
        hold_last_s: float = 2.0,
    ) -> None:
        self.classes, self.per_class, self.every_n_epochs = list(classes), per_class, every_n_epochs
        self.fps, self.hold_last_s = fps, hold_last_s
        self.frames: list[Frame] = []
        self.frame_limits: list[tuple] = []  # axes limits as drawn, per frame

    def _snapshot(self, pl_module: pl.LightningModule, epoch: int, val_loss: float | None) -> None:
        """Record the posterior means of the fixed images now."""
        self.frames.append(Frame(epoch, encode(pl_module.model, self._images).mu.cpu().numpy(), val_loss))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        images, labels = split_images(trainer.datamodule, "val", pl_module.device)
        picks = first_per_class(labels, self.classes, self.per_class)
        self._images, self._labels = images[picks], labels[picks].cpu().numpy()
        self.frames = []  # a resumed run starts its frames at the resumed epoch
        self._snapshot(pl_module, trainer.current_epoch, None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epochs_done = trainer.current_epoch + 1
        if epochs_done % self.every_n_epochs == 0 or epochs_done == trainer.max_epochs:
            val_loss = trainer.callback_metrics.get("val/loss")
            self._snapshot(pl_module, epochs_done, None if val_loss is None else float(val_loss))

    def draw(self, view: np.ndarray, frame: Frame, limits: tuple, beta: float) -> np.ndarray:
        """One frame: a scatter per class with a legend, fixed limits, β, epoch and val/loss in the title."""
        fig = new_figure(5.5, 5.0)
        ax = fig.add_subplot()
        for c in self.classes:
            points = view[self._labels == c]
            ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.5, label=CLASS_NAMES[c], rasterized=True)
        ax.set_xlim(*limits[0])
        ax.set_ylim(*limits[1])
        self.frame_limits.append((ax.get_xlim(), ax.get_ylim()))
        title = f"β = {beta:g} · epoch {frame.epoch}"
        if frame.val_loss is not None:
            title += f" · val/loss {frame.val_loss:.1f} nats"
        elif frame.epoch == 0:
            title += " · before training"
        ax.set_title(title)
        dims = frame.mu.shape[1]
        ax.set_xlabel("z₁" if dims == 2 else "PC 1 (aligned)")
        ax.set_ylabel("z₂" if dims == 2 else "PC 2 (aligned)")
        ax.legend(loc="upper right", markerscale=3)
        return render(fig)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or len(self.frames) < 1:
            return
        views = aligned_projections([f.mu for f in self.frames])
        limits = shared_limits(views)
        self.frame_limits = []
        images = [
            self.draw(view, frame, limits, pl_module.beta) for view, frame in zip(views, self.frames, strict=True)
        ]
        for frame, image in zip(self.frames, images, strict=True):
            publish(trainer, "latent_evolution", image, step=frame.epoch)  # TensorBoard's slider steps by epoch
        durations = [1000 / self.fps] * (len(images) - 1) + [1000 * self.hold_last_s]
        iio.imwrite(figure_dir(trainer) / "latent_evolution.gif", np.stack(images), duration=durations, loop=0)
