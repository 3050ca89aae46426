"""Checks of the composed config that must hold before any training starts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

TRAIN_IMAGES = 60_000


class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key."""


def _number(value: Any) -> bool:
    """True for int or float values (bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "beta": (lambda v: _number(v) and v >= 0, "must be a number >= 0"),
    "lr": (lambda v: _number(v) and v > 0, "must be a number > 0"),
    "model.latent_dim": (lambda v: isinstance(v, int) and v >= 1, "must be an integer >= 1"),
    "model.hidden_dims": (
        lambda v: isinstance(v, list | tuple) and len(v) > 0 and all(isinstance(h, int) and h >= 1 for h in v),
        "must be a non-empty list of positive integers",
    ),
    "data.batch_size": (lambda v: isinstance(v, int) and v >= 1, "must be an integer >= 1"),
    "ckpt_path": (lambda v: v is None or Path(str(v)).expanduser().is_file(), "must be null or an existing checkpoint"),
    "data.val_size": (
        lambda v: isinstance(v, int) and 0 <= v < TRAIN_IMAGES,
        f"must be an integer in [0, {TRAIN_IMAGES})",
    ),
}


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first key whose value breaks its rule."""
    for key, (ok, rule) in RULES.items():
        value = OmegaConf.select(cfg, key)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_object(value)
        if not ok(value):
            raise ConfigError(f"{key}={value!r}: {rule}")


def config_error(err: BaseException | None) -> ConfigError | None:
    """The ConfigError behind ``err``, also when Hydra's instantiate wrapped it, else None."""
    while err is not None and not isinstance(err, ConfigError):
        err = err.__cause__
    return err
