"""Names of things in a run's directory: a sweep job's directory name (Hydra's override_dirname, cut to what a
file name may hold), and the names a job and its sweep go by in the trackers."""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from betavae.base.cli import PATH_KEYS
from betavae.metrics import registry

NAME_MAX = 255  # bytes in one file name, on Linux's file systems


def job_dirname(overrides: Sequence[str], exclude: Sequence[str]) -> str:
    """A sweep job's directory name, as Hydra's override_dirname makes it (the overrides as given, sorted, joined
    by commas), without those of the keys in ``exclude``, the path keys and the across-runs families' settings
    (`udr.*`: the summary's, not the job's): a key, or every key under one given as ``name.*`` (``logger.*``:
    where a job logs is not what it trains). A name longer than a file name may be keeps the overrides that fit and
    ends in a hash of all of them (`short_name`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    across = registry.settings_keys(registry.Scope.ACROSS_RUNS)
    exclude = [*exclude, *PATH_KEYS, *across, *(f"{key}.*" for key in across)]
    prefixes = tuple(key[:-1] for key in exclude if key.endswith(".*"))
    kept = [o.input_line for o in OverridesParser.create().parse_overrides(list(overrides))
            if o.key_or_group not in exclude and not o.key_or_group.startswith(prefixes)]  # fmt: skip
    return short_name(sorted(kept))


def short_name(parts: Sequence[str], limit: int = NAME_MAX) -> str:
    """``parts`` joined by commas, or, where that is longer than ``limit`` bytes, the leading parts that fit (cut
    inside the first if none does) then `~` and 12 hex digits of the SHA-256 of the whole: the same overrides
    always give the same name, and the job's .hydra/overrides.yaml and the summary keep them all."""
    whole = ",".join(parts)
    if len(whole.encode()) <= limit:
        return whole
    tail = "~" + hashlib.sha256(whole.encode()).hexdigest()[:12]
    head = ""
    for part in parts:
        longer = f"{head},{part}" if head else part
        if len((longer + tail).encode()) > limit:
            break
        head = longer
    if not head:
        head = parts[0].encode()[: limit - len(tail)].decode(errors="ignore")
    return head + tail


def job_name() -> str:
    """A job's name for the trackers, as TensorBoard shows it: its directory's name (its overrides in a sweep),
    which a continued job keeps whatever its own overrides."""
    return Path(HydraConfig.get().runtime.output_dir).name


def sweep_name() -> str:
    """The multirun directory a job belongs to, grouping its sweep's runs; "" for a single run."""
    hydra_cfg = HydraConfig.get()
    return str(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else ""


def resume_command(hydra_cfg: DictConfig) -> str:
    """What continues a job, in words and as a command: its sweep's overrides with `hydra.sweep.dir=` of its
    sweep (the sweep's own, from multirun.yaml), or its own with `hydra.run.dir=` of its directory."""
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sweep = Path(hydra_cfg.sweep.dir)
        plan = OmegaConf.load(sweep / "multirun.yaml") if (sweep / "multirun.yaml").is_file() else None
        overrides = list(OmegaConf.select(plan, "hydra.overrides.task", default=[])) if plan else []
        words = ["-m", *overrides, f"hydra.sweep.dir={sweep}"]
    else:
        words = [*hydra_cfg.overrides.task, f"hydra.run.dir={hydra_cfg.runtime.output_dir}"]
    return "continue it with: python -m betavae.train " + " ".join(shlex.quote(str(word)) for word in words)
