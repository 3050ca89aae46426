"""MPI3D (`data=mpi3d`, Gondal et al. 2019) from the user's copy of one of its publishers' files (`data.variant`:
toy, realistic or real): 1,036,800 RGB 64×64 images, every combination of object colour (6), object shape (6),
object size (2), camera height (3), background colour (3), horizontal (40) and vertical (40) axis once, in that
order (`images.reshape([6, 6, 2, 3, 3, 40, 40, 64, 64, 3])`). The file has no labels: the factors are the
published ones (`data.factor_sizes` for a smaller file in the same layout)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from betavae.base.config import is_int, require
from betavae.data.contract import Factor
from betavae.data.grids import GridDataModule
from betavae.data.published import NpyMember, Published, cached, check_images, located

PAGE = "https://github.com/rr-learning/disentanglement_dataset"
VARIANTS = {name: Published(f"mpi3d_{name}.npz", PAGE, 1_036_800, (64, 64, 3)) for name in ("toy", "realistic", "real")}
FACTORS = (  # name, the publishers' names of its values (numbered where they give none)
    ("object_color", ("white", "green", "red", "blue", "brown", "olive")),
    ("object_shape", ("cone", "cube", "cylinder", "hexagonal", "pyramid", "sphere")),
    ("object_size", ("small", "large")),
    ("camera_height", ("top", "center", "bottom")),
    ("background_color", ("purple", "sea green", "salmon")),
    ("horizontal_axis", tuple(range(40))),
    ("vertical_axis", tuple(range(40))),
)
SIZES = tuple(len(values) for _, values in FACTORS)


class MPI3DDataModule(GridDataModule):
    """One MPI3D variant's grid from ``path`` (null: $BETAVAE_DATA/mpi3d_<variant>.npz or
    ~/.cache/betavae/mpi3d_<variant>.npz), checked before any work, its images cached once, channel first, in split
    order under ``cache_dir``."""

    name = "mpi3d"
    title = "MPI3D"
    image_size, channels = 64, 3
    group_factor = 1  # object shape

    def __init__(self, variant: str = "toy", path: str | os.PathLike | None = None, cache_dir: str | None = None,
                 factor_sizes: Sequence[int] = SIZES, image_size: int = 64, channels: int = 3, batch_size: int = 64,
                 eval_batch_size: int = 1000, val_size: int = 10_000, test_size: int = 10_000, split_seed: int = 42,
                 seed: int = 42, binarize: bool = False, binarize_seed: int = 0) -> None:  # fmt: skip
        super().__init__(batch_size, eval_batch_size, val_size, test_size, split_seed, seed, binarize, binarize_seed)
        require(variant in VARIANTS, "variant", variant, f"must be one of {', '.join(VARIANTS)}")
        require(image_size == 64, "image_size", image_size, "must be 64: MPI3D's images are 64×64")
        require(channels == 3, "channels", channels, "must be 3: MPI3D's images are RGB")
        sizes = list(factor_sizes) if isinstance(factor_sizes, Sequence) else []
        fits = len(sizes) == len(SIZES) and all(is_int(s, 1) and s <= p for s, p in zip(sizes, SIZES, strict=True))
        require(
            fits, "factor_sizes", factor_sizes, f"must be {len(SIZES)} sizes, each at most the published {list(SIZES)}"
        )
        self.published, self.cache_dir = VARIANTS[variant], cache_dir
        self.path = located(path, self.published)
        self.images_member = NpyMember(self.path, "images", self.published)
        check_images(self.images_member.shape, self.images_member.dtype, self.path, self.published)
        count, expected = self.images_member.shape[0], int(np.prod(sizes))
        if count != expected:
            grid = " × ".join(map(str, sizes))
            raise self.published.refused(self.path, f"it holds {count} images", f"{expected}, one per {grid}")
        self.factors = tuple(Factor(name, values[:size]) for (name, values), size in zip(FACTORS, sizes, strict=True))
        self.check_sizes()

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """The cache of the file's images, channel first, in split order."""

        def rows() -> Iterator[np.ndarray]:
            for chunk in self.images_member.rows():
                yield np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))

        order = (self.split_seed,)  # what orders the cache besides the contents; its sizes only cut it
        return cached(self.path, (self.grid_size, 3, 64, 64), rows, positions, order, self.cache_dir)
