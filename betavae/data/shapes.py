"""Shapes (`data=shapes`): dSprites' factors of variation (Matthey et al. 2017) — shape, scale, orientation, x and y
position — every combination once, rendered by our own code from the factor grid (nothing to download, nothing
that can rot). Binary images; each image's labels are its factor indices, and the grid gives the image of any
factor combination, which the disentanglement scores sample from."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import torch

from betavae.base.config import is_int, is_number, require
from betavae.data.contract import Factor
from betavae.data.grids import GridDataModule

log = logging.getLogger(__name__)
SHAPES = ("square", "ellipse", "heart")


def inside(shape: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether points (x, y) lie inside ``shape`` at scale 1, which fits the unit disc under any rotation."""
    if shape == "square":
        return np.maximum(np.abs(x), np.abs(y)) <= 0.68  # corners at radius 0.96
    if shape == "ellipse":
        return (x / 0.96) ** 2 + (y / 0.48) ** 2 <= 1
    if shape == "heart":  # (u² + v² − 1)³ ≤ u² v³, shrunk and centred so its farthest point is at radius 0.96
        u, v = x / 0.72, y / 0.72 + 0.1
        return (u**2 + v**2 - 1) ** 3 <= u**2 * v**3
    raise ValueError(f"unknown shape {shape!r}")


def sprites(shapes: Sequence[str], scales: np.ndarray, angles: np.ndarray, side: int) -> np.ndarray:
    """Binary sprites [shapes, scales, angles, side, side]: each shape scaled and rotated (anticlockwise, in
    degrees) about the centre of a side × side patch, whose inscribed disc it fills at scale 1. A pixel is set
    when its centre is inside."""
    centres = (np.arange(side) + 0.5) / (side / 2) - 1  # pixel centres in [−1, 1]
    x, y = np.meshgrid(centres, -centres)  # y up, rows from the top
    theta = np.deg2rad(angles)[:, None, None]
    cos, sin = np.cos(theta), np.sin(theta)
    xr, yr = cos * x + sin * y, -sin * x + cos * y  # rotated back by each angle: [angles, side, side]
    out = np.empty((len(shapes), len(scales), len(angles), side, side), dtype=bool)
    for i, shape in enumerate(shapes):
        for j, scale in enumerate(scales):
            out[i, j] = inside(shape, xr / scale, yr / scale)
    return out


def render(image_size: int, factors: Sequence[Factor], positions: np.ndarray | None = None) -> np.ndarray:
    """Every image of the factor grid (shape, scale, orientation, x, y), as uint8 0/255 [N, S, S]: in the grid's
    row-major order, or image g at row ``positions[g]`` (a permutation: the images in another order, written
    there directly, without a second copy of them all). The sprite patch, S − P + 1 pixels wide for P positions,
    is placed at each of P × P pixel offsets, so positions step by one pixel and no sprite is ever cut by the
    border."""
    shape, scale, orientation, xs, ys = factors
    side = image_size - len(xs) + 1
    patches = sprites(shape.values, np.asarray(scale.values), np.asarray(orientation.values), side) * np.uint8(255)
    sizes = (*patches.shape[:3], len(xs), len(ys))
    out = np.zeros((int(np.prod(sizes)), image_size, image_size), dtype=np.uint8)
    flat = patches.reshape(-1, side, side)  # shape, scale, angle: the grid's leading factors, in its order
    sprites_at = np.arange(len(flat))
    for i in range(len(xs)):
        for j in range(len(ys)):  # y position 0 at the bottom, as x is 0 at the left
            top = len(ys) - 1 - j
            index = sprites_at * (len(xs) * len(ys)) + i * len(ys) + j  # grid index of each sprite at (i, j)
            rows = index if positions is None else positions[index]
            out[rows, top : top + side, i : i + side] = flat
    return out


def grid_factors(image_size: int, shapes: int, scales: int, orientations: int, orientation_span: float,
                 positions: int) -> tuple[Factor, ...]:  # fmt: skip
    """The factors and their values: ``shapes`` of square, ellipse, heart; scales evenly in [0.5, 1] (dSprites');
    orientations evenly over [0°, orientation_span); x and y as pixel offsets of the sprite."""
    return (
        Factor("shape", SHAPES[:shapes]),
        Factor("scale", tuple(np.linspace(0.5, 1.0, scales).round(4).tolist())),
        Factor("orientation", tuple((np.arange(orientations) * orientation_span / orientations).round(4).tolist())),
        Factor("x", tuple(range(positions))),
        Factor("y", tuple(range(positions))),
    )


class ShapesDataModule(GridDataModule):
    """The shapes grid (shape, scale, orientation, x, y), one image per factor combination, rendered by
    `render` straight into split order ([N, 1, S, S] uint8; `betavae.data.grids`)."""

    name = "shapes"
    title = "betavae's rendered shapes"
    fid_features = ("inception",)  # the shipped network knows Fashion-MNIST alone

    def __init__(
        self,
        image_size: int = 32,
        channels: int = 1,
        shapes: int = 3,
        scales: int = 6,
        orientations: int = 10,
        orientation_span: float = 90.0,
        positions: int = 16,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 2000,
        test_size: int = 5000,
        split_seed: int = 42,
        seed: int = 42,
        binarize: bool = False,
        binarize_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, val_size, test_size, split_seed, seed, binarize, binarize_seed)
        require(is_int(image_size, 8), "image_size", image_size, "must be an integer >= 8")
        require(channels == 1, "channels", channels, "must be 1: the sprites are binary")
        require(is_int(shapes, 1) and shapes <= len(SHAPES), "shapes", shapes, f"must be in [1, {len(SHAPES)}]")
        for name, value in (("scales", scales), ("orientations", orientations)):
            require(is_int(value, 1), name, value, "must be an integer >= 1")
        span = orientation_span
        require(is_number(span) and 0 < span <= 360, "orientation_span", span, "must be a number in (0, 360]")
        require(is_int(positions, 1) and positions <= image_size // 2, "positions", positions,
                f"must be in [1, image_size // 2 = {image_size // 2}]: the sprite is image_size − positions + 1 "
                "pixels wide")  # fmt: skip
        self.image_size = image_size
        self.factors = grid_factors(image_size, shapes, scales, orientations, orientation_span, positions)
        self.check_sizes()

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """Render every image of the grid, image g at row ``positions[g]``, uint8 [N, 1, S, S]."""
        start = time.perf_counter()
        grid = torch.from_numpy(render(self.image_size, self.factors, positions))[:, None]
        log.info("Shapes: %d images of %d×%d rendered in %.1f s (%s)", len(grid), self.image_size, self.image_size,
                 time.perf_counter() - start, " × ".join(f"{len(f)} {f.name}" for f in self.factors))  # fmt: skip
        return grid
