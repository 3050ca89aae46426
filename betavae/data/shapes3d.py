"""3D Shapes (`data=shapes3d`, Burgess & Kim 2018) from the user's copy of the publishers' `3dshapes.h5`: 480,000 RGB
64×64 images, every combination of floor hue (10), wall hue (10), object hue (10), scale (8), shape (4) and
orientation (15) once, orientation fastest. Sizes and values come from the file's `labels`; reading HDF5 needs the
`h5` extra (h5py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch

from betavae.base.config import require
from betavae.base.errors import DataError
from betavae.data.contract import Factor
from betavae.data.grids import GridDataModule
from betavae.data.published import CHUNK, Published, cached, check_grid_order, check_images, located

SHAPES3D = Published("3dshapes.h5", "https://github.com/google-deepmind/3d-shapes", 480_000, (64, 64, 3))
NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")  # labels' columns, in order


def h5py_module():
    """h5py, or one line naming the extra that installs it."""
    try:
        import h5py
    except ImportError:
        raise DataError("data=shapes3d reads HDF5 with h5py: pip install 'betavae[h5]' (in a checkout: pip install "
                        "-e '.[h5]')") from None  # fmt: skip
    return h5py


class Shapes3DDataModule(GridDataModule):
    """3D Shapes' grid from ``path`` (null: $BETAVAE_DATA/3dshapes.h5 or ~/.cache/betavae/3dshapes.h5), checked
    before any work, its images cached once, channel first, in split order under ``cache_dir``."""

    name = "shapes3d"
    title = "3D Shapes"
    image_size, channels = 64, 3
    group_factor = 4  # shape

    def __init__(self, path: str | os.PathLike | None = None, cache_dir: str | None = None, image_size: int = 64,
                 channels: int = 3, batch_size: int = 64, eval_batch_size: int = 1000, val_size: int = 10_000,
                 test_size: int = 10_000, split_seed: int = 42, seed: int = 42, binarize: bool = False,
                 binarize_seed: int = 0) -> None:  # fmt: skip
        super().__init__(batch_size, eval_batch_size, val_size, test_size, split_seed, seed, binarize, binarize_seed)
        require(image_size == 64, "image_size", image_size, "must be 64: 3D Shapes' images are 64×64")
        require(channels == 3, "channels", channels, "must be 3: 3D Shapes' images are RGB")
        self.path, self.cache_dir = located(path, SHAPES3D), cache_dir
        self.factors = self.read_factors()
        self.check_sizes()

    def open(self):
        """The file, opened read-only; one line where it is not HDF5 or is truncated."""
        try:
            return h5py_module().File(self.path, "r")
        except OSError as err:
            raise SHAPES3D.refused(self.path, f"truncated or not HDF5 ({err})", "a whole HDF5 file") from None

    def read_factors(self) -> tuple[Factor, ...]:
        """The factors from the file's labels (each column's distinct values, in order), checked to be every
        combination once in ravel order."""
        with self.open() as f:
            for key in ("images", "labels"):
                if not isinstance(f.get(key), h5py_module().Dataset):  # absent, or a group of that name
                    raise SHAPES3D.refused(self.path, f"it holds no dataset {key!r}", "datasets images and labels")
            check_images(f["images"].shape, f["images"].dtype, self.path, SHAPES3D)
            if f["labels"].dtype.kind not in "fiu":
                raise SHAPES3D.refused(self.path, f"its labels are {f['labels'].dtype}", "[N, 6] floats")
            labels = f["labels"][()]
            count = f["images"].shape[0]
        if labels.shape != (count, len(NAMES)):
            raise SHAPES3D.refused(self.path, f"its labels are {labels.shape}", f"[{count}, {len(NAMES)}] floats")
        values = [np.unique(labels[:, k]) for k in range(len(NAMES))]
        indices = np.stack([np.searchsorted(v, labels[:, k]) for k, v in enumerate(values)], axis=1)
        check_grid_order(indices, tuple(len(v) for v in values), self.path, SHAPES3D)
        return tuple(Factor(name, tuple(v.round(6).tolist())) for name, v in zip(NAMES, values, strict=True))

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """The cache of the file's images, channel first, in split order."""

        def rows() -> Iterator[np.ndarray]:
            with self.open() as f:
                images = f["images"]
                for start in range(0, images.shape[0], CHUNK):
                    yield np.ascontiguousarray(images[start : start + CHUNK].transpose(0, 3, 1, 2))

        order = (self.split_seed,)  # what orders the cache besides the contents; its sizes only cut it
        return cached(self.path, (self.grid_size, 3, 64, 64), rows, positions, order, self.cache_dir)
