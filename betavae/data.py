"""Fashion-MNIST: IDX reading with validation, dataset discovery, and an in-memory LightningDataModule."""

from __future__ import annotations

import gzip
import logging
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import hydra
import lightning.pytorch as pl
import numpy as np
import torch
from omegaconf import DictConfig

from betavae.cli import quote_path_arguments
from betavae.config import is_int, require
from betavae.files import cache_path

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
PATH_KEYS = ("data.root", "data.system_dir")


class DataError(RuntimeError):
    """A dataset file or directory that cannot be used, with the reason."""


def _read_bytes(path: Path) -> bytes:
    """Read a raw or gzip-compressed file, turning decompression failures into a DataError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read file ({err})") from err


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file (images: magic 2051, labels: 2049) into a uint8 array, checking header and size."""
    data = _read_bytes(path)
    if len(data) < 8:
        raise DataError(f"{path}: file too short for an IDX header ({len(data)} bytes)")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise DataError(f"{path}: bad IDX magic number {found}, expected {magic}")
    ndim = 3 if magic == IMAGE_MAGIC else 1
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise DataError(
            f"{path}: truncated or corrupted, header says {shape} ({expected} bytes) "
            f"but the file holds {len(data) - header} bytes of data"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_file(directory: Path, stem: str) -> Path | None:
    """Return ``stem`` or ``stem.gz`` inside ``directory`` if either exists."""
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def layouts(directory: Path) -> tuple[Path, Path]:
    """Where the IDX files may lie under ``directory``: in it, or in torchvision's FashionMNIST/raw."""
    return directory, directory / "FashionMNIST" / "raw"


def idx_files(directory: Path) -> dict[str, Path] | None:
    """Map each of the four IDX stems to its file in ``directory`` (or its FashionMNIST/raw), or None."""
    for candidate in layouts(directory):
        stems = [stem for images, labels, _ in SPLITS.values() for stem in (images, labels)]
        found = {stem: _find_file(candidate, stem) for stem in stems}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def load_split(files: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Load and validate one split as (uint8 images [N, 28, 28], int64 labels [N])."""
    image_stem, label_stem, count = SPLITS[split]
    images = read_idx(files[image_stem], IMAGE_MAGIC)
    labels = read_idx(files[label_stem], LABEL_MAGIC)
    if images.shape != (count, 28, 28):
        raise DataError(f"{files[image_stem]}: expected {count} images of 28x28, found {images.shape}")
    if labels.shape != (count,):
        raise DataError(f"{files[label_stem]}: expected {count} labels, found {labels.shape[0]}")
    if labels.max() > 9:
        raise DataError(f"{files[label_stem]}: label {int(labels.max())} outside the range 0-9")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _download(root: Path) -> None:
    """Let torchvision download the four IDX files into ``root/FashionMNIST/raw``."""
    from torchvision.datasets import FashionMNIST

    FashionMNIST(str(root), train=True, download=True)
    FashionMNIST(str(root), train=False, download=True)


def locate(root: str | os.PathLike, system_dir: str | None = SYSTEM_DIR, download: bool = True) -> dict[str, Path]:
    """Find the IDX files: in ``root``, then ``system_dir``, then by torchvision download into ``root``."""
    root = Path(root).expanduser()
    tried = [f"{root} (and {root / 'FashionMNIST' / 'raw'})"]
    if files := idx_files(root):
        return files
    if system_dir:
        tried.append(str(system_dir))
        if files := idx_files(Path(system_dir)):
            return files
    if download:
        tried.append(f"torchvision download into {root}")
        try:
            _download(root)
        except Exception as err:  # any network or disk failure means the same here
            log.warning("Fashion-MNIST download failed: %s", err)
        if files := idx_files(root):
            return files
    raise DataError(
        "Fashion-MNIST not found; tried: "
        + "; ".join(tried)
        + ". Get it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu, offline), "
        "or with internet access let torchvision download it (data.download=true)."
    )


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
    """uint8 images [N, 28, 28] as flattened floats in [0, 1], [N, 784]: what the model and metrics take."""
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


class FashionMNISTDataModule(pl.LightningDataModule):
    """Fashion-MNIST held as uint8 tensors (on the training device), served as shuffled in-memory batches."""

    def __init__(
        self,
        root: str | None = None,
        system_dir: str | None = SYSTEM_DIR,
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5_000,
        split_seed: int = 42,
        seed: int = 42,
        binarize: bool = False,
        binarize_seed: int = 0,
    ) -> None:
        super().__init__()
        train_images = SPLITS["train"][2]
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            require(is_int(value, 1), name, value, "must be an integer >= 1")
        require(  # validation picks the best checkpoint, so it needs images
            is_int(val_size, 1) and val_size < train_images,
            "val_size",
            val_size,
            f"must be an integer in [1, {train_images})",
        )
        self.root = cache_path("BETAVAE_DATA", given=root)
        self.system_dir, self.download = system_dir, download
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.val_size, self.split_seed, self.seed = val_size, split_seed, seed
        self.binarize, self.binarize_seed = binarize, binarize_seed
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.binary: dict[str, torch.Tensor] = {}  # with binarize: each split binarised once

    def prepare_data(self) -> None:
        """Find (or download) the files once, on one process."""
        locate(self.root, self.system_dir, self.download)

    def setup(self, stage: str | None = None) -> None:
        """Load every split once and move it to the training device."""
        if self.splits:
            return
        processes = self.trainer.world_size if self.trainer is not None else 1
        require(  # a process with no validation image would skip the epoch-end sums the others wait for
            self.val_size >= processes,
            "data.val_size",
            self.val_size,
            f"must be at least the number of DDP processes ({processes}), so that each validates some images",
        )
        files = locate(self.root, self.system_dir, download=False)
        source = next(iter(files.values())).parent
        log.info("Fashion-MNIST from %s", source)
        if source not in layouts(self.root) and any(self.root.glob("*-ubyte*")):
            log.warning(
                "Fashion-MNIST: %s holds only some of the four IDX files, so they came from %s", self.root, source
            )
        images, labels = load_split(files, "train")
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        train, val = order[: len(order) - self.val_size], order[len(order) - self.val_size :]
        device = self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")
        splits = {"train": (images[train], labels[train]), "val": (images[val], labels[val])}
        splits["test"] = load_split(files, "test")
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
        grayscale images (what figures, FID and the probe use)."""
        images, labels = self._split(split)
        return to_unit(images), labels

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


@hydra.main(version_base="1.3", config_path="../conf", config_name="find_data")
def main(cfg: DictConfig) -> None:
    """`python -m betavae.data [data.root=<dir>] [data.download=false]`: find (or download) the data and print
    the directory it is in."""
    data = cfg.data
    try:
        files = locate(cache_path("BETAVAE_DATA", given=data.root), data.system_dir, data.download)
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    print(next(iter(files.values())).parent)


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
