"""Run directories and the record of each: every path in a job directory (`JobDir`), a sweep directory
(`SweepDir`) and an exported model's folder (`ModelDir`); how a job ended (`RunRecord`, its metrics.json) and its
results (training's and evaluate's, merged in one order); the job directories of a sweep. The one owner of those
paths; it never imports the model."""

from __future__ import annotations

import dataclasses
import fcntl
import logging
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from omegaconf import DictConfig, OmegaConf

from betavae.base.errors import RunError
from betavae.base.files import read_json, write_json, write_npz, write_png

log = logging.getLogger(__name__)


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
        """tracking.json: the job's MLflow and W&B runs (betavae.loggers.tracking)."""
        return self.root / "tracking.json"

    @property
    def lock(self) -> Path:
        """.lock: held by the one process that trains or evaluates in the directory."""
        return self.root / ".lock"

    def holder(self) -> str | None:
        """Who holds the directory's lock now (what `betavae.runs.process.job_lock` wrote: pid and host), or None when
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
            if isinstance(evaluation, dict) or self.evaluation.is_file():
                reason = reason if isinstance(evaluation, dict) else "unreadable, not a JSON object"
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
    beta: Any = None  # the objective's β (None for one without: capacity); a finished job's is its weight's
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
        """The record of a job that finished with these test metrics, trained with an objective of ``weight``
        (its other settings under `objective`, so each number is written once)."""
        settings = OmegaConf.to_container(cfg.objective, resolve=True)
        objective = {k: v for k, v in settings.items() if k not in weight}
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
        del rest["status"], rest["reason"], rest["metrics"], rest["beta"]  # β: the objective's weight, once
        return {"status": self.status.value, **self.metrics, **rest}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunRecord:
        """The record a metrics.json object holds (one without a status is a finished job's); ValueError if it
        is not one."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        names = {f.name for f in dataclasses.fields(cls)} - {"status", "metrics"}
        metrics = {k: v for k, v in data.items() if k.startswith("test/")}
        given = {k: v for k, v in data.items() if k in names}
        if "beta" not in given and isinstance(given.get("weight"), dict):  # a finished job's, since 0.12
            given["beta"] = given["weight"].get("beta")
        return cls(Status(data.get("status", Status.OK.value)), metrics=metrics, **given)

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


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a Hydra multirun: its subdirectories that hold a .hydra/config.yaml."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep directory not found: {sweep_dir}")
    return sorted(config.parent.parent for config in Path(sweep_dir).glob("*/.hydra/config.yaml"))
