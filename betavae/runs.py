"""Run directories: the experiment each holds (its config, checked against a run that continues it, and the
parts that continued it), the job directories of a sweep, and their best checkpoints' models."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from betavae.files import RunError, atomic, first_line, read_json, write_json, write_yaml
from betavae.module import BetaVAEModule

log = logging.getLogger(__name__)


class Refused(RunError):
    """A run refused before any work: it records nothing, the directory keeps what it holds."""


class SweepRefused(Refused):
    """A job refused for a reason every job of its sweep shares: the sweep stops, in one line."""


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a Hydra multirun: its subdirectories that hold a .hydra/config.yaml."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep directory not found: {sweep_dir}")
    return sorted(config.parent.parent for config in Path(sweep_dir).glob("*/.hydra/config.yaml"))


def run_config(run_dir: Path) -> DictConfig:
    """The composed config the run was trained with (its latest part's, which differs from the first part's
    only in keys that may change on a continuation)."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: {path} is missing")
    try:
        return OmegaConf.load(path)
    except Exception as err:  # YAML's or OmegaConf's error, several lines long
        raise RunError(f"{path}: unreadable ({first_line(err)})") from None


def holds_work(run_dir: Path) -> bool:
    """Whether a run directory holds an experiment's work (a checkpoint, or a finished run), so that a run in
    it continues that experiment rather than starting one."""
    run_dir = Path(run_dir)
    finished = (read_json(run_dir / "metrics.json") or {}).get("status") == "ok"
    return finished or any((run_dir / "checkpoints").glob("*.ckpt"))


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """A config's values by dotted key (lists whole), interpolations as written."""
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat |= leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return flat


def changes(old: DictConfig, new: DictConfig) -> dict[str, tuple[Any, Any]]:
    """Every key whose value differs between two configs: key → (old, new), None where a config lacks it."""
    a, b = (leaves(OmegaConf.to_container(c, resolve=False)) for c in (old, new))
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def may_change(key: str, allowed: Sequence[str]) -> bool:
    """Whether ``key`` is one of ``allowed`` or under one of them."""
    return any(key == a or key.startswith(f"{a}.") for a in allowed)


def check_continuation(run_dir: Path, cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """Refuse, in one line, a run that would continue ``run_dir``'s experiment with other hyperparameters
    (any key outside cfg.continue_may_change); return what it changes (empty for a new experiment)."""
    if not holds_work(run_dir):
        return {}
    changed = changes(run_config(run_dir), cfg)
    refused = {k: v for k, v in changed.items() if not may_change(k, cfg.continue_may_change)}
    if refused:
        listed = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in refused.items())
        raise Refused(
            f"{run_dir} holds a run trained with other values ({listed}); one directory holds one experiment: "
            f"train in a new one (hydra.run.dir=<new>), from this run's weights with "
            f"ckpt_path={Path(run_dir) / 'checkpoints' / 'last.ckpt'} if you want them"
        )
    return changed


def record_part(run_dir: Path, cfg: DictConfig, hydra_cfg: DictConfig, changed: dict[str, tuple[Any, Any]]) -> None:
    """Write the run's .hydra/ files (Hydra's are off: it would write them before the job could refuse to run)
    and, for a run continuing the directory's experiment, append what it changed to .hydra/continued.yaml."""
    directory = Path(run_dir) / ".hydra"
    continued = directory / "continued.yaml"
    if holds_work(run_dir):
        parts = (yaml.safe_load(continued.read_text()) if continued.is_file() else None) or []
        part = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": list(hydra_cfg.overrides.task)}
        write_yaml(continued, [*parts, {**part, "changed": {k: list(v) for k, v in changed.items()}}])
    else:
        continued.unlink(missing_ok=True)  # left by an experiment whose work was deleted
    write_yaml(directory / "overrides.yaml", list(hydra_cfg.overrides.task))
    with atomic(directory / "hydra.yaml") as tmp:
        OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), tmp)
    with atomic(directory / "config.yaml") as tmp:
        OmegaConf.save(cfg, tmp)


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (as metrics.json names it, else best-*.ckpt), else last.ckpt."""
    run_dir = Path(run_dir)
    named = (read_json(run_dir / "metrics.json") or {}).get("best_checkpoint")
    candidates = [run_dir / named] if named else []
    candidates += sorted((run_dir / "checkpoints").glob("best-*.ckpt"), reverse=True)
    candidates.append(run_dir / "checkpoints" / "last.ckpt")
    for path in candidates:
        if path.is_file():
            return path
    raise RunError(f"no checkpoint in {run_dir / 'checkpoints'}")


def load_run(run_dir: Path, map_location: str = "cpu") -> tuple[BetaVAEModule, DictConfig, Path]:
    """The run's best checkpoint as a module (rebuilt from the checkpoint alone), the run's config, that path."""
    path = best_checkpoint(run_dir)
    return BetaVAEModule.load(path, map_location), run_config(run_dir), path


def record_failure(output_dir: Path, cfg: DictConfig, hydra_cfg: DictConfig, status: str, reason: str) -> None:
    """Write the failure into metrics.json, unless it holds a finished run (a failed continuation of a finished
    job must not erase its results), with the job's config if it never got to record one. Best effort: on a
    full disk the failure stays in train.log and the exit message."""
    previous = read_json(output_dir / "metrics.json")
    if previous is not None and previous.get("status") == "ok":
        return
    values = OmegaConf.to_container(OmegaConf.masked_copy(cfg, ["beta", "seed"]), resolve=False)  # as given
    try:
        write_json(output_dir / "metrics.json", {"status": status, "reason": reason, **values})
        if not (output_dir / ".hydra" / "config.yaml").is_file():  # so summaries list the job
            record_part(output_dir, cfg, hydra_cfg, {})
    except (OSError, RunError) as err:
        log.error("Could not record the failure in %s: %s", output_dir / "metrics.json", err)
