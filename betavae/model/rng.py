"""Each process's random number generators, captured into a checkpoint and restored from one: with the epoch
(which seeds the batch order), an exact continuation needs them, by rank."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from betavae.runs.process import in_process_group


def rng_state() -> dict[str, Any]:
    """This process's global RNG states: torch's CPU generator and, if CUDA is in use, its current device's,
    numpy's and Python's, as plain tensors, ints and strings, so a checkpoint holding them still loads with
    torch.load(weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by `rng_state`, the CUDA one onto this process's current device."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, list):  # an older checkpoint's states of every visible GPU: take the first device's
        cuda = cuda[0] if cuda else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda, torch.cuda.current_device())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every process of a distributed job, by rank ([value] alone in a single process)."""
    if not in_process_group():
        return [value]
    values: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(values, value)
    return values
