"""dSprites (`data=dsprites`, Matthey et al. 2017) from the user's copy of the publishers' file: 737,280 binary
64×64 images, every combination of shape (3), scale (6), orientation (40, over a full turn), x (32) and y (32)
position once, y fastest; its colour factor has one value and is left out. Sizes and values come from the file's
`latents_classes` and `latents_values`; its `metadata` (a pickled object) is never read."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from betavae.base.config import require
from betavae.data.contract import Factor
from betavae.data.grids import GridDataModule
from betavae.data.published import NpyMember, Published, cached, check_grid_order, check_images, located

DSPRITES = Published("dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz",
                     "https://github.com/google-deepmind/dsprites-dataset", 737_280, (64, 64))  # fmt: skip
SHAPES = ("square", "ellipse", "heart")
NAMES = ("color", "shape", "scale", "orientation", "x", "y")  # latents_classes' columns, in order


class DSpritesDataModule(GridDataModule):
    """dSprites' grid from ``path`` (null: $BETAVAE_DATA/<file> or ~/.cache/betavae/<file>), checked before any
    work, its images cached once in split order under ``cache_dir`` (`betavae.data.published`)."""

    name = "dsprites"
    title = "dSprites"
    image_size, channels = 64, 1

    def __init__(self, path: str | os.PathLike | None = None, cache_dir: str | None = None, image_size: int = 64,
                 channels: int = 1, batch_size: int = 64, eval_batch_size: int = 1000, val_size: int = 10_000,
                 test_size: int = 10_000, split_seed: int = 42, seed: int = 42, binarize: bool = False,
                 binarize_seed: int = 0) -> None:  # fmt: skip
        super().__init__(batch_size, eval_batch_size, val_size, test_size, split_seed, seed, binarize, binarize_seed)
        require(image_size == 64, "image_size", image_size, "must be 64: dSprites' images are 64×64")
        require(channels == 1, "channels", channels, "must be 1: dSprites' images are binary")
        self.path, self.cache_dir = located(path, DSPRITES), cache_dir
        self.images_member = NpyMember(self.path, "imgs", DSPRITES)
        check_images(self.images_member.shape, self.images_member.dtype, self.path, DSPRITES)
        self.factors = self.read_factors()
        self.check_sizes()

    def read_factors(self) -> tuple[Factor, ...]:
        """The factors from the file's labels: one per column of latents_classes but colour, checked to be every
        combination once in ravel order, valued by latents_values."""
        classes = NpyMember(self.path, "latents_classes", DSPRITES).load()
        values = NpyMember(self.path, "latents_values", DSPRITES).load()
        count = self.images_member.shape[0]
        if classes.shape != (count, len(NAMES)) or values.shape != (count, len(NAMES)):
            raise DSPRITES.refused(self.path, f"latents_classes is {classes.shape}, latents_values {values.shape}",
                                   f"[{count}, {len(NAMES)}] each, one row per image")  # fmt: skip
        sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
        check_grid_order(classes, sizes, self.path, DSPRITES)
        factors = []
        for column, name in enumerate(NAMES[1:], start=1):
            first = np.unique(classes[:, column], return_index=True)[1]  # the first image of each value
            found = values[first, column].round(6).tolist()
            factors.append(Factor(name, SHAPES[: len(found)] if name == "shape" else tuple(found)))
        return tuple(factors)

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """The cache of the file's images, 0/255, one channel, in split order."""

        def rows() -> Iterator[np.ndarray]:
            for chunk in self.images_member.rows():
                yield (chunk * np.uint8(255))[:, None]

        order = (self.split_seed,)  # what orders the cache besides the contents; its sizes only cut it
        return cached(self.path, (self.grid_size, 1, 64, 64), rows, positions, order, self.cache_dir)
