"""Shared fixtures: tiny IDX writers and the real Fashion-MNIST location."""

from __future__ import annotations

import functools
import gzip
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
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


class Zygote:
    """A `python -m tests.zygote` server: each `run` is a new process forked from one that has already imported
    the libraries (see tests/zygote.py for why)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.zygote"], cwd=REPO, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self._next(timeout=300)  # ready

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("ZYGOTE "):
                self.lines.put(json.loads(line[len("ZYGOTE ") :]))

    def _next(self, timeout: float) -> dict:
        return self.lines.get(timeout=timeout)

    def run(self, args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
        """``python -m <args>`` in ``cwd``: its exit status and output, as subprocess.run gives them."""
        with tempfile.TemporaryDirectory() as files:
            out, err = Path(files, "stdout"), Path(files, "stderr")
            request = {"module": args[0], "args": args[1:], "cwd": str(cwd), "stdout": str(out), "stderr": str(err)}
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = self._next(timeout=60)["pid"]
            try:
                returncode = self._next(timeout)["returncode"]
            except queue.Empty:
                os.kill(pid, signal.SIGKILL)
                self._next(timeout=60)
                raise subprocess.TimeoutExpired(args, timeout, out.read_text(), err.read_text()) from None
            return subprocess.CompletedProcess(args, returncode, out.read_text(), err.read_text())


@functools.cache
def zygote() -> Zygote:
    """The session's zygote, started at the first run."""
    return Zygote()


def run_module(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` as a new process (forked by the zygote) and return its result (text output)."""
    result = zygote().run(list(args), cwd or REPO, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result
