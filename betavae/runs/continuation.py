"""The experiment a run directory holds: the config it was trained with (as this version writes it, whatever
version recorded it), checked against a run that continues it, and the parts that continued it; the failure a
job records. It never imports the model."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from betavae.base.cli import PATH_KEYS
from betavae.base.errors import Refused, RunError, first_line
from betavae.base.files import atomic, write_yaml
from betavae.metrics import registry
from betavae.runs.layout import JobDir, RunRecord, Status

log = logging.getLogger(__name__)
# Where the classes that configs name lived before 0.12.0, when the package's modules moved into its folders: an
# earlier version's recorded `_target_`s, read as this version's (a run of 0.11 continues as the same experiment).
MOVED = {
    "betavae.model": "betavae.model.networks",
    "betavae.likelihood": "betavae.model.likelihoods",
    "betavae.loss": "betavae.model.objectives",
    "betavae.module": "betavae.model.module",
    "betavae.checkpoints": "betavae.model.checkpoints",
    "betavae.fid": "betavae.metrics.fid",
    "betavae.disentanglement": "betavae.metrics.disentanglement",
    "betavae.selection": "betavae.metrics.selection",
    "betavae.loggers": "betavae.loggers.trackers",
    "betavae.sweep": "betavae.summary.callback",
    "callbacks.checkpoint": "betavae.callbacks.checkpoint",
    "callbacks.figures": "betavae.callbacks.figures",
    "callbacks.latent_evolution": "betavae.callbacks.latent_evolution",
    "callbacks.metrics": "betavae.callbacks.metrics",
    "callbacks.progress": "betavae.callbacks.progress",
}


def run_config(run_dir: Path) -> DictConfig:
    """The composed config the run was trained with (its latest part's, which differs from the first part's
    only in keys that may change on a continuation)."""
    path = JobDir(Path(run_dir)).config
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: {path} is missing")
    try:
        return upgraded(OmegaConf.load(path))
    except Exception as err:  # YAML's or OmegaConf's error, several lines long
        raise RunError(f"{path}: unreadable ({first_line(err)})") from None


def upgraded(cfg: DictConfig) -> DictConfig:
    """A config recorded by an earlier version, as this version writes it: before 0.6.0 the networks took no
    image size (the MLP its pixels, `model.net.input_dim: 784`) and the data, Fashion-MNIST, gave none (28);
    before 0.8.0 neither took channels (every image was gray: 1); β-TCVAE estimated on each batch as it came (now
    on chunks of the training batch size, which it was); before 0.12.0 the classes lived elsewhere (`MOVED`)."""
    moved_targets(cfg)
    net, objective, data = OmegaConf.select(cfg, "model.net"), cfg.get("objective"), cfg.get("data")
    with open_dict(cfg):
        if isinstance(net, DictConfig) and "image_size" not in net:
            net.pop("input_dim", None)
            net.image_size = "${data.image_size}"
            if isinstance(data, DictConfig) and "image_size" not in data:
                data.image_size = 28
        if isinstance(net, DictConfig) and "image_channels" not in net:
            net.image_channels = "${data.channels}"
        if isinstance(data, DictConfig) and "channels" not in data:
            data.channels = 1
        if isinstance(objective, DictConfig) and str(objective.get("_target_")).endswith(".TCObjective"):
            objective.setdefault("batch_size", "${data.batch_size}")
    return cfg


def moved_targets(node: Any) -> None:
    """Rewrite, in place, every `_target_` under ``node`` that names a class where it was before 0.12.0."""
    if isinstance(node, DictConfig):
        target = (
            node.get("_target_") if "_target_" in node and not OmegaConf.is_interpolation(node, "_target_") else None
        )
        if isinstance(target, str) and (module := target.rpartition(".")[0]) in MOVED:
            node._target_ = f"{MOVED[module]}.{target.rpartition('.')[2]}"
        for key in node:
            if not OmegaConf.is_interpolation(node, key):
                moved_targets(node._get_node(key))
    elif isinstance(node, ListConfig):
        for item in node:
            moved_targets(item)


def over_recorded(recorded: Any, key: str, overrides: Sequence[str]) -> tuple[DictConfig | None, str]:
    """The settings ``key`` a run or sweep recorded, with the command's `<key>.<name>=` ``overrides`` on top, and
    the overrides in words (", with key.name=..." or ""); None where nothing was recorded under ``key``."""
    if not isinstance(recorded, DictConfig):
        return None, ""
    given = [o.removeprefix(f"{key}.") for o in overrides if o.startswith(f"{key}.")]
    words = f", with {' '.join(f'{key}.{o}' for o in given)}" if given else ""
    return OmegaConf.merge(recorded, OmegaConf.from_dotlist(given)), words


def holds_work(run_dir: Path) -> bool:
    """Whether a run directory holds an experiment's work (a checkpoint, or a finished run), so that a run in
    it continues that experiment rather than starting one."""
    record = RunRecord.read(run_dir)
    return (record is not None and record.finished) or any(JobDir(Path(run_dir)).checkpoints.glob("*.ckpt"))


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


def continuable(cfg: DictConfig) -> list[str]:
    """The keys a run may change when it continues a directory's experiment (and everything under them): the
    config's `continue_may_change`, the path keys, and every metric family's settings (its scores are recomputed
    on the checkpoint; what was trained is not)."""
    return [*cfg.continue_may_change, *PATH_KEYS, *registry.settings_keys()]


def check_continuation(run_dir: Path, cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """Refuse, in one line, a run that would continue ``run_dir``'s experiment with other hyperparameters
    (any key outside `continuable`); return what it changes (empty for a new experiment)."""
    if not holds_work(run_dir):
        return {}
    changed = changes(run_config(run_dir), cfg)
    allowed = continuable(cfg)
    refused = {k: v for k, v in changed.items() if not may_change(k, allowed)}
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
    job = JobDir(Path(run_dir))
    continued = job.continued
    if holds_work(run_dir):
        parts = (yaml.safe_load(continued.read_text()) if continued.is_file() else None) or []
        part = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": list(hydra_cfg.overrides.task)}
        write_yaml(continued, [*parts, {**part, "changed": {k: list(v) for k, v in changed.items()}}])
    else:
        continued.unlink(missing_ok=True)  # left by an experiment whose work was deleted
    write_yaml(job.overrides, list(hydra_cfg.overrides.task))
    with atomic(job.hydra / "hydra.yaml") as tmp:
        OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), tmp)
    with atomic(job.config) as tmp:
        OmegaConf.save(cfg, tmp)


def record_failure(output_dir: Path, cfg: DictConfig, hydra_cfg: DictConfig, status: Status, reason: str) -> None:
    """Write the failure into metrics.json, unless it holds a finished run (a failed continuation of a finished
    job must not erase its results), with the job's config if it never got to record one. Best effort: on a
    full disk the failure stays in train.log and the exit message."""
    previous = RunRecord.read(output_dir)
    if previous is not None and previous.finished:
        return
    try:
        RunRecord.of_stopped_job(cfg, status, reason).write(output_dir)
        if not JobDir(output_dir).config.is_file():  # so summaries list the job
            record_part(output_dir, cfg, hydra_cfg, {})
    except (OSError, RunError) as err:
        log.error("Could not record the failure in %s: %s", output_dir / RunRecord.FILE, err)


def finished(cfg: DictConfig, output_dir: Path) -> RunRecord | None:
    """The job's record if it says the job finished at least the configured epochs."""
    record = RunRecord.read(output_dir)
    if record is not None and record.finished and record.epochs >= cfg.trainer.max_epochs:
        return record
    return None
