"""Shared fixtures: tiny IDX writers and the real Fashion-MNIST location."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from betavae.data import IMAGE_MAGIC, LABEL_MAGIC, SYSTEM_DIR, DataError, locate
from betavae.files import cache_path

REPO = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray, magic: int) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in .gz)."""
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_split(directory: Path, images: int = 4, gz: bool = True) -> None:
    """Write all four IDX files with ``images`` random images each (valid format, wrong counts)."""
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        pixels = rng.integers(0, 256, (images, 28, 28))
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", pixels, IMAGE_MAGIC)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, images), LABEL_MAGIC)


class Payload:
    """Pickles into a call that would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """Directory of the real Fashion-MNIST files (Debian's dataset-fashion-mnist, or $BETAVAE_DATA); the tests
    that need it are skipped, with the reason, where it is missing."""
    try:
        files = locate(cache_path("BETAVAE_DATA"), SYSTEM_DIR, download=False)
    except DataError as err:
        pytest.skip(f"real Fashion-MNIST is needed for this test (run `make data`): {err}")
    return next(iter(files.values())).parent


def run_module(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` as a real subprocess and return its result (text output)."""
    result = subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd or REPO, capture_output=True, text=True, timeout=600, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result
