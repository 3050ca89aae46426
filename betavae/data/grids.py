"""Data sets that are a grid of factors of variation, every combination's image once (the shapes, dSprites, 3D
Shapes, MPI3D): the images stored once, in the order of a random split into test, val and train (by
``split_seed``), so each split is a slice of them, never a copy; the grid's images looked up, in ravel order,
through the row each grid index is stored at."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from betavae.base.config import is_int, require, require_seed
from betavae.data.memory import InMemoryDataModule, to_unit


class GridDataModule(InMemoryDataModule):
    """A factor grid split at random into ``test_size`` test, ``val_size`` validation and the remaining training
    images. A data set declares its `factors` (and `group_factor`, the factor its figures show by) and implements
    `store`. ``grid`` holds every image once ([N, C, H, W] uint8), grid index g at row ``position[g]``; labels are
    factor indices [N, K]."""

    group_factor = 0  # the factor whose values the figures show a row or a colour for

    def __init__(self, batch_size: int, eval_batch_size: int, val_size: int, test_size: int, split_seed: int,
                 seed: int, binarize: bool, binarize_seed: int) -> None:  # fmt: skip
        super().__init__(batch_size, eval_batch_size, val_size, seed, binarize, binarize_seed)
        require_seed("split_seed", split_seed)
        require(is_int(val_size, 1), "val_size", val_size, "must be an integer >= 1")
        require(is_int(test_size, 1), "test_size", test_size, "must be an integer >= 1")
        self.test_size, self.split_seed = test_size, split_seed
        self.grid: torch.Tensor | None = None  # every image, stored in split order (`position`), on the CPU
        self.position: torch.Tensor | None = None  # the row of `grid` holding each grid index's image

    @property
    def grid_size(self) -> int:
        """How many images the grid has: every factor combination once."""
        return int(np.prod(self.factor_sizes))

    def check_sizes(self) -> None:
        """Refuse, naming the key, split sizes that leave no training image (call once `factors` are known)."""
        require(self.val_size + self.test_size < self.grid_size, "val_size", self.val_size,
                f"with test_size={self.test_size} must leave training images of the {self.grid_size}")  # fmt: skip

    @property
    def groups(self) -> tuple[str, ...]:  # type: ignore[override]
        """The values of the group factor, by name."""
        return tuple(str(v) for v in self.factors[self.group_factor].values)

    def group_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Each image's group: its index of the group factor."""
        return labels[:, self.group_factor]

    def store(self, positions: np.ndarray) -> torch.Tensor:
        """Every image of the grid, grid index g at row ``positions[g]``, uint8 [N, C, H, W] on the CPU."""
        raise NotImplementedError

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Store the grid once, in the order of a random split into test, val and train; each split a slice."""
        order = torch.randperm(self.grid_size, generator=torch.Generator().manual_seed(self.split_seed))
        self.position = torch.empty_like(order)
        self.position[order] = torch.arange(self.grid_size)
        self.grid = self.store(self.position.numpy())
        sizes = [self.test_size, self.val_size, self.grid_size - self.test_size - self.val_size]
        images, indices = self.grid.split(sizes), order.split(sizes)
        return {name: (images[k], self.labels_of(indices[k])) for k, name in enumerate(("test", "val", "train"))}

    def labels_of(self, index: torch.Tensor) -> torch.Tensor:
        """Factor indices [n, K] of grid images by their index in the grid."""
        return torch.from_numpy(np.stack(np.unravel_index(index.numpy(), self.factor_sizes), axis=1).astype(np.int64))

    def _grid(self) -> torch.Tensor:
        """The stored grid, stored on first use."""
        if self.grid is None:
            self.setup()
        return self.grid

    def images_of(self, factors: np.ndarray) -> torch.Tensor:
        """The images [n, C·H·W] in [0, 1] of factor combinations [n, K] (indices)."""
        grid = self._grid()
        return to_unit(grid[self.position[torch.from_numpy(np.ravel_multi_index(tuple(factors.T), self.factor_sizes))]])

    def grid_images(self, batch: int) -> Iterator[torch.Tensor]:
        """Every grid image in ravel order, as floats in [0, 1], ``batch`` at a time."""
        grid = self._grid()
        for chunk in torch.arange(self.grid_size).split(batch):
            yield to_unit(grid[self.position[chunk]])
