"""Files a run reads and writes: the cache location, and atomic JSON/YAML/PNG/GIF writes that say when the disk
is full."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import yaml

from betavae.base.errors import DiskFull

CACHE = "~/.cache/betavae"


def megabytes(size: float) -> str:
    """``size`` bytes as '12.3 MB'."""
    return f"{size / 1e6:.1f} MB"


def disk_full(path: Path, needed: int | None = None) -> DiskFull:
    """The one-line error for a write into ``path`` that found its disk full."""
    directory = Path(path).parent
    free = shutil.disk_usage(directory).free if directory.is_dir() else 0
    need = f"{megabytes(needed)} free, it has {megabytes(free)}" if needed else "more free space"
    return DiskFull(f"{directory}: out of disk space writing {Path(path).name}: needs {need}; free some and run "
                    "the same command again")  # fmt: skip


def cache_path(env: str, *parts: str, given: str | os.PathLike | None = None) -> Path:
    """The ``given`` directory if any, else ``$env`` or ~/.cache/betavae joined with ``parts``: where data and
    FID statistics are kept."""
    if given:
        return Path(given).expanduser()
    return Path(os.environ.get(env) or CACHE, *parts).expanduser()


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it only when the block succeeds: a kill at any moment
    leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        with tmp.open("rb+") as f:  # on disk before it takes the name: a crash cannot leave an empty file
            os.fsync(f.fileno())
        tmp.replace(path)
        sync_directory(path.parent)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise disk_full(path) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def sync_directory(directory: Path) -> None:
    """Flush a directory's entries to disk, so a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files `atomic` left under ``directory`` when a process was killed mid-write (call
    it only while holding the directory's lock); returns them."""
    stale = [p for p in Path(directory).rglob(".*.tmp") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def write_bytes(path: Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically, refusing in one line before writing when the disk cannot hold it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(path.parent).free < len(data):
        raise disk_full(path, len(data))
    with atomic(path) as tmp:
        tmp.write_bytes(data)
    return path


def finite(data: Any) -> Any:
    """``data`` with every non-finite float replaced by None: strict JSON has no NaN or Infinity."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented strict JSON (non-finite numbers as null), atomically."""
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(finite(data), indent=2, allow_nan=False) + "\n")
    return Path(path)


def write_yaml(path: Path, data: Any) -> Path:
    """Write ``data`` as YAML, atomically."""
    with atomic(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    return Path(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if the file is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def write_png(directory: Path, name: str, image: np.ndarray) -> Path:
    """Write ``<directory>/<name>.png``, atomically."""
    with atomic(Path(directory) / f"{name}.png") as tmp:
        iio.imwrite(tmp, image, extension=".png")
    return Path(directory) / f"{name}.png"


def write_gif(path: Path, frames: list[np.ndarray], durations_ms: list[float]) -> Path:
    """Write an endlessly looping GIF with one duration per frame, atomically."""
    with atomic(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=durations_ms, loop=0)
    return Path(path)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write arrays as an uncompressed .npz (readable with np.load(path), no pickles), atomically."""
    with atomic(path) as tmp, tmp.open("wb") as f:
        np.savez(f, **arrays)
    return Path(path)
