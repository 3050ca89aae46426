"""Data held in memory: uint8 image tensors [N, C, H, W] on the training device, cut into batches by indexing (no
per-image Dataset or collate), a seeded order per epoch sharded across DDP processes, and the DataModule every data
set of betavae builds on, on the data contract (`betavae.data.contract`)."""

from __future__ import annotations

from collections.abc import Iterator

import lightning.pytorch as pl
import numpy as np
import torch

from betavae.base.config import is_int, require, require_seed
from betavae.base.errors import DataError
from betavae.data.contract import ImageData


class EpochSampler:
    """Index order for one rank: a fresh seeded permutation per epoch (if ``shuffle``), sharded across ranks."""

    def __init__(
        self, size: int, shuffle: bool, drop_last: bool, seed: int = 0, rank: int = 0, world_size: int = 1
    ) -> None:
        self.size, self.shuffle, self.drop_last, self.seed = size, shuffle, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at the start of each epoch, so resumed runs see the same order."""
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        """This rank's indices for the current epoch. With ``drop_last`` the remainder that does not divide
        among the ranks is dropped, so every rank runs the same number of steps (no DDP hang)."""
        if self.shuffle:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.size)
        if self.drop_last:
            order = order[: len(self) * self.world_size]
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.world_size
        return len(range(self.rank, self.size, self.world_size))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, C, H, W] as flattened floats in [0, 1], [N, C·H·W]: what the model and metrics take."""
    return images.flatten(1).float().div_(255)


def first_per_class(labels: torch.Tensor, classes: list[int], per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` images of each class, class by class."""
    return torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in classes])


class TensorBatches:
    """Batches cut from in-memory uint8 tensors by indexing, instead of a per-image Dataset and collate. With
    ``binarize`` each epoch draws its own binary images, pixel ~ Bernoulli(intensity), seeded by the sampler's
    seed, epoch and rank (so a resumed run draws the same)."""

    batch_sampler = None  # Lightning inspects `sampler`/`batch_sampler` as on a DataLoader; it calls sampler.set_epoch

    def __init__(
        self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, sampler: EpochSampler, binarize: bool = False
    ) -> None:
        self.images, self.labels, self.batch_size, self.sampler = images, labels, batch_size, sampler
        self.binarize = binarize

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.sampler.indices().to(self.images.device)
        if self.binarize:
            seed = np.random.SeedSequence([self.sampler.seed, self.sampler.epoch, self.sampler.rank]).generate_state(1)
            generator = torch.Generator(self.images.device).manual_seed(int(seed[0]))
        for batch in order.split(self.batch_size):
            x = to_unit(self.images[batch])
            yield (torch.bernoulli(x, generator=generator) if self.binarize else x), self.labels[batch]


def binarized(images: torch.Tensor, seed: int) -> torch.Tensor:
    """uint8 images binarised once, pixel ~ Bernoulli(intensity) from a CPU generator seeded by ``seed``, as
    uint8 0/255: the same fixed binary images on every device and in every run."""
    x = torch.bernoulli(to_unit(images.cpu()), generator=torch.Generator().manual_seed(seed))
    return x.view_as(images).mul_(255).to(torch.uint8)


class InMemoryDataModule(ImageData, pl.LightningDataModule):
    """A data set held as uint8 images [N, C, H, W] and their labels in memory (on the training device), split
    into train, val and test, and served as shuffled in-memory batches. A data set declares what it offers (the
    contract's attributes) and implements `load`, once per process. With ``binarize`` the likelihood sees binary
    images: each training epoch draws its own, pixel ~ Bernoulli(intensity); validation and test are binarised
    once with ``binarize_seed``."""

    def __init__(
        self, batch_size: int, eval_batch_size: int, val_size: int, seed: int, binarize: bool, binarize_seed: int
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            require(is_int(value, 1), name, value, "must be an integer >= 1")
        for name, value in (("seed", seed), ("binarize_seed", binarize_seed)):
            require_seed(name, value)
        require(isinstance(binarize, bool), "binarize", binarize, "must be true or false")
        self.batch_size, self.eval_batch_size, self.val_size, self.seed = batch_size, eval_batch_size, val_size, seed
        self.binarize, self.binarize_seed = binarize, binarize_seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.binary: dict[str, torch.Tensor] = {}  # with binarize: each split binarised once

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every split ("train", "val", "test") as uint8 images [N, C, H, W] and labels, on the CPU."""
        raise NotImplementedError

    def check_processes(self, processes: int) -> None:
        """Refuse fewer validation images than processes: a process with none would skip the epoch-end sums the
        others wait for (asked by the door, and again by `setup` for any other Trainer)."""
        require(
            self.val_size >= processes,
            "data.val_size",
            self.val_size,
            f"must be at least the number of DDP processes ({processes}), so that each validates some images",
        )

    def setup(self, stage: str | None = None) -> None:
        """Load every split once and move it to the training device."""
        if self.splits:
            return
        self.check_processes(self.trainer.world_size if self.trainer is not None else 1)
        splits = self.load()
        for name, (x, _) in splits.items():
            if tuple(x.shape[1:]) != self.image_shape:
                raise DataError(f"data={self.name}: its {name} images are {tuple(x.shape[1:])}, and it declares "
                                f"{tuple(self.image_shape)} (channels, height, width)")  # fmt: skip
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        self.splits = {name: (x.to(device), y.to(device)) for name, (x, y) in splits.items()}
        if self.binarize:
            self.binary = {name: binarized(x, self.binarize_seed).to(device) for name, (x, _) in splits.items()}

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """A split's uint8 images and labels, loading the data on first use."""
        if not self.splits:
            self.setup()
        return self.splits[split]

    def size(self, split: str) -> int:
        """How many images a split holds."""
        return len(self._split(split)[1])

    def images(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """All images of a split as flattened floats in [0, 1] with their labels, on the data's device: the
        images before any binarisation (what figures, FID and the probe use)."""
        images, labels = self._split(split)
        return to_unit(images), labels

    def group_of(self, labels: torch.Tensor) -> torch.Tensor:
        """Each image's group (an index into `groups`): its class."""
        return labels

    def observed(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The images the likelihood scores: with ``binarize`` the split's fixed binarisation, else `images`."""
        if not self.binarize:
            return self.images(split)
        return to_unit(self.binary[split]), self._split(split)[1]

    def _loader(self, split: str, train: bool, batch_size: int) -> TensorBatches:
        """Batches of one split for this process's rank; training shuffles and drops the uneven remainder."""
        images, labels = self.splits[split]
        if self.binarize and not train:  # training draws fresh binary images each epoch instead
            images = self.binary[split]
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        sampler = EpochSampler(len(images), shuffle=train, drop_last=train, seed=self.seed, rank=rank, world_size=world)
        return TensorBatches(images, labels, batch_size, sampler, binarize=self.binarize and train)

    def train_dataloader(self) -> TensorBatches:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> TensorBatches:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        return self._loader("test", False, self.eval_batch_size)
