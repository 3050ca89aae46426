"""Fashion-MNIST's files: IDX files read with validation, and found where they are (data.root, Debian's package
dataset-fashion-mnist, or torchvision's download)."""

from __future__ import annotations

import functools
import gzip
import logging
import os
import struct
from pathlib import Path

import numpy as np
import torch

from betavae.base.errors import DataError

log = logging.getLogger(__name__)

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"


def _read_bytes(path: Path) -> bytes:
    """Read a raw or gzip-compressed file, turning decompression failures into a DataError."""
    try:
        stored = path.read_bytes()
        return _gunzip(stored) if path.suffix == ".gz" else stored
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path}: cannot read file ({err})") from err


@functools.lru_cache(maxsize=4)
def _gunzip(stored: bytes) -> bytes:
    """The decompressed bytes, once per process for each file's contents (the key): evaluate over a sweep, the
    notebook API and the tests' forked jobs read the same four files for every run, and decompressing them took
    0.27 s of the 0.40 s of each read on this project's 2-core machine."""
    return gzip.decompress(stored)


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
