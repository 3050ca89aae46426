"""Config errors: constructors check their own arguments with `require`; entry points report them in one line."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from betavae.base.cli import quote_path_arguments
from betavae.base.errors import ConfigError

CONF = Path(__file__).parents[1] / "conf"  # the Hydra configs the package ships


def is_number(value: Any) -> bool:
    """True for finite int or float values (bool is not a number here, nor are inf and NaN)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any, low: int) -> bool:
    """True for an int (bool excluded) >= ``low``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def require(ok: bool, name: str, value: Any, rule: str) -> None:
    """Raise ConfigError('<name>=<value>: <rule>') unless ``ok``."""
    if not ok:
        raise ConfigError(f"{name}={value!r}: {rule}", name)


def require_seed(name: str, value: Any) -> None:
    """A seed torch and numpy both take: an integer in [0, 2**32)."""
    require(is_int(value, 0) and value < 2**32, name, value, "must be an integer in [0, 2**32)")


def require_weight(name: str, value: Any) -> None:
    """An objective's weight (β, γ): a finite number >= 0."""
    require(is_number(value) and value >= 0, name, value, "must be a finite number >= 0")


def require_positive(name: str, value: Any) -> None:
    """A rate or scale (the learning rate): a finite number > 0."""
    require(is_number(value) and value > 0, name, value, "must be a finite number > 0")


def config_error(err: BaseException, cfg: DictConfig | None = None) -> str | None:
    """The one-line message of a ConfigError behind ``err`` (also when Hydra's instantiate wrapped it), its
    argument named by its full config key, or by the top-level key it interpolates (``beta: ${beta}``)."""
    full_key = None
    while err is not None and not isinstance(err, ConfigError):
        if found := re.search(r"\nfull_key: (\S+)", str(err)):  # Hydra's instantiate names the failing node so
            full_key = found.group(1)
        err = err.__cause__ or err.__context__  # OmegaConf raises a resolver's error as the context of its own
    if err is None:
        return None
    if cfg is None or full_key is None or err.name is None:
        return str(err)
    return source_key(cfg, f"{full_key}.{err.name}") + str(err)[len(err.name) :]


def source_key(cfg: DictConfig, key: str) -> str:
    """The key a value is set by, following interpolations: model.beta → beta (``beta: ${beta}``),
    callbacks.fid.scorer.cache_dir → fid.cache_dir (``scorer: ${fid}``)."""
    parts = key.split(".")
    for i in range(1, len(parts) + 1):
        parent = OmegaConf.select(cfg, ".".join(parts[: i - 1])) if i > 1 else cfg
        if (
            isinstance(parent, DictConfig)
            and parts[i - 1] in parent
            and OmegaConf.is_interpolation(parent, parts[i - 1])
        ):
            target = parent._get_node(parts[i - 1])._value()
            if re.fullmatch(r"\$\{[\w.]+\}", target):  # a plain reference, not a resolver call
                return source_key(cfg, ".".join([target[2:-1], *parts[i:]]))
    return key


def instantiate_copy(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """instantiate(cfg[key]) on a copy of the whole config: Hydra resolves a node's interpolated sub-configs
    (``objective: ${objective}``) in place, which would hide from `source_key` where a bad value came from."""
    return instantiate(copy.deepcopy(cfg)[key], **kwargs)


def composed(name: str, overrides: Sequence[str] = (), hydra: bool = False) -> DictConfig:
    """The config `python -m betavae.<name> <overrides>` composes (train, evaluate, summarize, export), for a door
    called in process; with Hydra's part (the `hydra` key) if asked."""
    quoted = quote_path_arguments(["", *overrides])[1:]  # paths as given: `run_dir=multirun/x/beta=0.5`
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(name, overrides=quoted, return_hydra_config=hydra)
