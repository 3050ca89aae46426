"""What a data module offers, declared: the images' shape with channels, classes or not, factors of variation
(names, values, every combination in ravel order) or not, and which FID feature networks know its images. The
scorers, figures, FID and the networks ask this contract, never a data set's name; a new data set implements it
(usually through `betavae.data.memory.InMemoryDataModule`) in a module of its own plus its YAML."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch


@dataclass(frozen=True)
class Factor:
    """One factor of variation: its name and the value at each index (a label's entry is that index)."""

    name: str
    values: tuple[float | str, ...]

    def __len__(self) -> int:
        return len(self.values)


class ImageShape(NamedTuple):
    """An image's channels, height and width; the networks and figures take flattened images, channel first."""

    channels: int
    height: int
    width: int

    @property
    def values(self) -> int:
        """Numbers per flattened image, C·H·W."""
        return self.channels * self.height * self.width


class ImageData:
    """The data contract. Images are given as flattened floats in [0, 1] ([N, C·H·W], channel first) with their
    labels: class indices where the data has ``classes``, factor indices [N, K] where it has ``factors``."""

    name = "data"  # for the log and the one-line reasons
    title = "images"  # what papers and model cards call the data set
    hub_dataset: str | None = None  # its id on the Hugging Face Hub, where it has one (a model card's `datasets`)
    image_size: int  # the side of the square images
    channels = 1
    classes: tuple[str, ...] | None = None  # class names, when labels are classes a linear probe can read
    groups: tuple[str, ...] = ()  # what figures show a row or a colour for: the classes, or shapes
    factors: tuple[Factor, ...] | None = None  # the ground-truth factors of variation, when the data knows them
    fid_features: tuple[str, ...] = ("inception",)  # FID feature networks that know these images (`fid.feature`)

    @property
    def image_shape(self) -> ImageShape:
        """(channels, height, width) of every image."""
        return ImageShape(self.channels, self.image_size, self.image_size)

    def images(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of a split ("train", "val", "test"), flattened floats in [0, 1], and its labels."""
        raise NotImplementedError

    def observed(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images the likelihood scores (binarised where the data is), with their labels."""
        raise NotImplementedError

    def size(self, split: str) -> int:
        """How many images a split holds."""
        raise NotImplementedError

    def group_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Each image's group (an index into `groups`), from its labels."""
        raise NotImplementedError

    def grouped(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every image of a split, as `images` gives them, with their groups."""
        images, labels = self.images(split)
        return images, self.group_of(labels)

    @property
    def factor_sizes(self) -> tuple[int, ...]:
        """How many values each factor takes: the grid's shape, in ravel order."""
        return tuple(len(f) for f in self.factors or ())

    def images_of(self, factors: np.ndarray) -> torch.Tensor:
        """The images [n, C·H·W] in [0, 1] of factor combinations [n, K] (indices): what the FactorVAE and BetaVAE
        scores sample. Only for data with factors."""
        raise NotImplementedError

    def grid_images(self, batch: int) -> Iterator[torch.Tensor]:
        """The image of every factor combination, in ravel order (the last factor fastest), ``batch`` at a time:
        what the code-based scores look codes up in. Only for data with factors."""
        raise NotImplementedError

    def check_processes(self, processes: int) -> None:
        """Refuse, in one line, a number of DDP processes this data cannot serve (any number, unless a data set
        says otherwise); the training door asks before Lightning starts the other processes."""

    def lacks(self, need: str) -> str | None:
        """Why this data cannot give what a metric family needs ("classes", "factors", "fid_features"), in one
        line; None when it can."""
        missing = {
            "classes": self.classes is None and f"data={self.name} has no classes",
            "factors": self.factors is None and f"data={self.name} has no ground-truth factors of variation",
            "fid_features": not self.fid_features and f"data={self.name} names no FID feature network",
        }
        if need not in missing:
            raise ValueError(f"unknown data capability {need!r}: one of {', '.join(missing)}")
        return missing[need] or None
