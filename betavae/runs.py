"""Run directories and the record of each: every path in a job directory (`JobDir`) and a sweep directory
(`SweepDir`), how a job ended (`RunRecord`, its metrics.json), its results (training's and evaluate's, merged in
one order), the experiment it holds (its config, checked against a run that continues it, and the parts that
continued it), and the job directories of a sweep. The one owner of those paths; it never imports the model."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from betavae.errors import Refused, RunError, first_line
from betavae.files import atomic, read_json, write_json, write_npz, write_png, write_yaml

log = logging.getLogger(__name__)
# Keys whose value is one path, taken as it is (`cli.quote_path_arguments`). All but Hydra's own directories are
# also left out of job directory names and may change when a job continues (tests/test_config.py checks both).
PATH_KEYS = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "data.root", "data.path", "data.cache_dir",
             "fid.cache_dir", "fid.inception_weights")  # fmt: skip


@dataclass(frozen=True)
class JobDir:
    """A job directory's paths: every file betavae reads or writes in one (Hydra writes train.log, TensorBoard
    tensorboard/, the trackers theirs)."""

    METRICS: ClassVar[str] = "metrics.json"  # the job's record (RunRecord)
    EVALUATION: ClassVar[str] = "evaluation.json"  # python -m betavae.evaluate's results

    root: Path

    @property
    def metrics(self) -> Path:
        return self.root / self.METRICS

    @property
    def evaluation(self) -> Path:
        return self.root / self.EVALUATION

    @property
    def figures(self) -> Path:
        """figures/: every PNG (and the JSON beside some), and latent_evolution.gif."""
        return self.root / "figures"

    @property
    def checkpoints(self) -> Path:
        """checkpoints/: last.ckpt, what a job continues from, and best-epoch=NNN.ckpt, what is tested."""
        return self.root / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def hydra(self) -> Path:
        """.hydra/: the job's config, overrides and Hydra config (its latest part's), and continued.yaml."""
        return self.root / ".hydra"

    @property
    def config(self) -> Path:
        return self.hydra / "config.yaml"

    @property
    def overrides(self) -> Path:
        return self.hydra / "overrides.yaml"

    @property
    def continued(self) -> Path:
        return self.hydra / "continued.yaml"

    @property
    def tracking(self) -> Path:
        """tracking.json: the job's MLflow and W&B runs (betavae.tracking)."""
        return self.root / "tracking.json"

    @property
    def lock(self) -> Path:
        """.lock: held by the one process that trains or evaluates in the directory."""
        return self.root / ".lock"

    def holder(self) -> str | None:
        """Who holds the directory's lock now (what `betavae.jobs.job_lock` wrote: pid and host), or None when
        nobody does. Asked without taking it for longer than the question."""
        if not self.lock.is_file():
            return None
        with self.lock.open("r") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return f.read().strip() or "unknown"
            fcntl.flock(f, fcntl.LOCK_UN)
        return None

    def arrays(self, name: str) -> Path:
        """<name>.npz: the arrays a metric family's scores come from (disentanglement.npz)."""
        return self.root / f"{name}.npz"

    def write_arrays(self, arrays: dict[str, dict[str, Any]]) -> None:
        """Write each family's arrays as <name>.npz, atomically."""
        for name, values in arrays.items():
            write_npz(self.arrays(name), values)

    def write_figures(self, figures: dict[str, Any], documents: dict[str, Any]) -> None:
        """Write figures/<name>.png and figures/<name>.json, atomically."""
        for name, image in figures.items():
            write_png(self.figures, name, image)
        for name, data in documents.items():
            write_json(self.figures / f"{name}.json", data)

    def results(self) -> dict[str, Any]:
        """The job's test metrics, as every reader (`betavae.api`, the sweep summary, the loggers) gives them:
        training's (metrics.json) with evaluate's (evaluation.json) over them, evaluate being the later. An
        evaluation of another checkpoint than the record's best (the run trained on since) is left out."""
        record = RunRecord.read(self.root)
        tested = dict(record.metrics) if record else {}
        evaluation = read_json(self.evaluation)
        if not isinstance(evaluation, dict) or (reason := stale(evaluation, record)):
            if isinstance(evaluation, dict):
                log.warning("%s: %s; its metrics are left out (evaluate the run again)", self.evaluation, reason)
            return tested
        return tested | {k: v for k, v in evaluation.items() if k.startswith("test/")}

    def notes(self) -> list[str]:
        """Why some of the job's results do not compare with other runs': evaluate's where it ran (and is not
        stale), else training's."""
        record = RunRecord.read(self.root)
        evaluation = read_json(self.evaluation)
        if isinstance(evaluation, dict) and not stale(evaluation, record) and isinstance(evaluation.get("notes"), list):
            return [str(note) for note in evaluation["notes"]]
        return list(record.notes) if record else []


def stale(evaluation: dict[str, Any], record: RunRecord | None) -> str | None:
    """Why an evaluation.json no longer describes the run (it scored another checkpoint than the record's best),
    or None."""
    scored, best = evaluation.get("checkpoint"), record.best_checkpoint if record else None
    if scored and best and Path(str(scored)).name != Path(best).name:
        return f"it scored {Path(str(scored)).name}, and the run's best checkpoint is now {Path(best).name}"
    return None


@dataclass(frozen=True)
class SweepDir:
    """A sweep (multirun) directory's paths: Hydra's plan, the job directories, and what the summary writes."""

    root: Path

    @property
    def plan(self) -> Path:
        """multirun.yaml: the sweep's config and overrides, as Hydra recorded them."""
        return self.root / "multirun.yaml"

    def summary(self, suffix: str) -> Path:
        """summary.md, summary.csv, summary.json."""
        return self.root / f"summary.{suffix}"

    @property
    def tradeoff(self) -> Path:
        return self.root / "tradeoff.png"

    def arrays(self, name: str) -> Path:
        """<name>.npz: the arrays an across-runs family's scores come from."""
        return self.root / f"{name}.npz"

    def jobs(self) -> list[JobDir]:
        """The job directories: subdirectories that hold a .hydra/config.yaml."""
        return [JobDir(path) for path in job_dirs(self.root)]


@dataclass(frozen=True)
class ModelDir:
    """An exported model's folder (`python -m betavae.export`), in the Hugging Face Hub's model layout."""

    root: Path
    FORMAT: ClassVar[int] = 1  # of config.json: what `betavae.api.load_model` reads

    @property
    def weights(self) -> Path:
        """model.safetensors: the network's weights alone."""
        return self.root / "model.safetensors"

    @property
    def config(self) -> Path:
        """config.json: what rebuilds the network and its likelihood, and what it was trained on and with."""
        return self.root / "config.json"

    @property
    def card(self) -> Path:
        """README.md: the model card."""
        return self.root / "README.md"


class Status(str, Enum):
    """How a job ended, as its record says (the first three), or as a sweep summary lists a job without an end."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    UNFINISHED = "unfinished"  # started, and killed or interrupted before it finished
    RUNNING = "running"  # started, and its lock is held: training (or evaluate) is at it now
    NOT_RUN = "not run"  # planned by the sweep, never started

    def __str__(self) -> str:
        return self.value


@dataclass
class RunRecord:
    """A job's metrics.json: its status and, for a finished job, the test metrics and what was trained; for a
    failed or interrupted one, the one-line reason and β and seed as they were given."""

    FILE: ClassVar[str] = JobDir.METRICS

    status: Status
    reason: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # test/*
    beta: Any = None  # the objective's β (None for an objective without one: capacity)
    seed: Any = None
    objective: dict[str, Any] | None = None
    weight: dict[str, float] | None = None  # the objective's own weights: {"beta": 4.0}, {"gamma": 100, "c_max": 25}
    likelihood: str | None = None
    precision: str | None = None
    epochs: int = 0
    wall_time_s: float | None = None  # training time, all parts of a continued run
    best_checkpoint: str | None = None  # relative to the job directory
    notes: list[str] = field(default_factory=list)  # why some test metrics do not compare with other runs'

    @property
    def finished(self) -> bool:
        """Whether the job trained and tested to the end."""
        return self.status is Status.OK

    @classmethod
    def of_finished_job(cls, cfg: DictConfig, metrics: dict[str, float], epochs: int, wall_time_s: float | None,
                        best_checkpoint: str | None, weight: dict[str, float],
                        notes: list[str] | None = None) -> RunRecord:  # fmt: skip
        """The record of a job that finished with these test metrics, trained with an objective of ``weight``."""
        objective = OmegaConf.to_container(cfg.objective, resolve=True)
        return cls(Status.OK, None, metrics, weight.get("beta"), cfg.seed, objective, weight, likelihood_label(cfg),
                   str(cfg.trainer.precision), epochs, wall_time_s, best_checkpoint, list(notes or []))  # fmt: skip

    @classmethod
    def of_stopped_job(cls, cfg: DictConfig, status: Status, reason: str) -> RunRecord:
        """The record of a job that failed or was interrupted, with β and seed as given (they may be the reason)."""
        given = OmegaConf.to_container(OmegaConf.masked_copy(cfg, ["beta", "seed"]), resolve=False)
        return cls(status, reason, beta=given.get("beta"), seed=given.get("seed"))

    def to_json(self) -> dict[str, Any]:
        """metrics.json's object: status first, the test metrics flat beside the rest."""
        if not self.finished:
            return {"status": self.status.value, "reason": self.reason, "beta": self.beta, "seed": self.seed}
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        del rest["status"], rest["reason"], rest["metrics"]
        return {"status": self.status.value, **self.metrics, **rest}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record a metrics.json object holds (one without a status is a finished job's); ValueError if it
        is not one."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)} - {"status", "metrics"}
        metrics = {k: v for k, v in data.items() if k.startswith("test/")}
        return cls(Status(data.get("status", Status.OK.value)), metrics=metrics,
                   **{k: v for k, v in data.items() if k in names})  # fmt: skip

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord | None:
        """The job's record; None if it has none, or one that is not a record (damaged, or not JSON)."""
        data = read_json(Path(run_dir) / cls.FILE)
        try:
            return None if data is None else cls.from_json(data)
        except (ValueError, TypeError):
            return None

    def write(self, run_dir: Path) -> Path:
        """Write the record as the job's metrics.json (strict JSON, atomically)."""
        return write_json(Path(run_dir) / self.FILE, self.to_json())


def likelihood_label(cfg: DictConfig) -> str:
    """The likelihood's class name, with ' binarized' when the data are binarised (likelihood=binarized)."""
    return cfg.likelihood._target_.rsplit(".", 1)[-1] + (" binarized" if cfg.data.get("binarize") else "")


NAME_MAX = 255  # bytes in one file name, on Linux's file systems


def job_dirname(overrides: Sequence[str], exclude: Sequence[str]) -> str:
    """A sweep job's directory name, as Hydra's override_dirname makes it (the overrides as given, sorted, joined
    by commas), without those of the keys in ``exclude``: a key, or every key under one given as ``name.*``
    (``logger.*``: where a job logs is not what it trains). A name longer than a file name may be keeps the
    overrides that fit and ends in a hash of all of them (`short_name`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

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


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a Hydra multirun: its subdirectories that hold a .hydra/config.yaml."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep directory not found: {sweep_dir}")
    return sorted(config.parent.parent for config in Path(sweep_dir).glob("*/.hydra/config.yaml"))


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
    on chunks of the training batch size, which it was)."""
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
