"""Files a run reads and writes: the cache location, atomic JSON/PNG/GIF writes, checkpoints loaded safely."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

CACHE = "~/.cache/betavae"


class RunError(RuntimeError):
    """A run directory or checkpoint that cannot be used, with the reason."""


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
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


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


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint read with torch.load(weights_only=True): nothing pickled in it is executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the safe unpickler's refusal, or a damaged file
        reason = str(err).strip().splitlines()[0]
        raise RunError(f"{path}: refused, it cannot be loaded as plain tensors and values ({reason})") from None
