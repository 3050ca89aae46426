"""What every logger gets beyond Lightning's scalars (images, the hyperparameters with the final test metrics,
files); MLflow and W&B loggers that never stop training (`Tolerant`); and the runs a job's tracking.json records,
which a continued job, or evaluate, logs to. The logger classes are Lightning's own, made tolerant; their
packages (the mlflow and wandb extras) are imported only by the loggers that need them."""

from __future__ import annotations

import importlib.util
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from hydra.utils import get_class, instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from betavae.base.errors import RunError, SweepRefused, first_line
from betavae.loggers import tracking
from betavae.loggers.kinds import Kind, kind
from betavae.loggers.trackers import Tolerant
from betavae.metrics import registry
from betavae.runs.layout import JobDir, likelihood_label

log = logging.getLogger(__name__)


def logger_kind(node: DictConfig) -> type[Kind] | None:
    """The class a logger config builds, where it is a kind of ours (None: another Lightning logger)."""
    cls = get_class(str(node.get("_target_", "")))
    return cls if isinstance(cls, type) and issubclass(cls, Kind) else None


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a sweep varies, flat: TensorBoard's HPARAMS tab, MLflow's params, W&B's config. β is
    the objective's own (none for the capacity objective, whose weights are objective.gamma and .c_max)."""
    objective = OmegaConf.to_container(cfg.objective, resolve=True)
    return {
        "objective": objective.pop("_target_").rsplit(".", 1)[-1],
        **{f"objective.{k}": str(v) if isinstance(v, list) else v for k, v in objective.items()},
        "likelihood": likelihood_label(cfg),
        **({"beta": objective["beta"]} if "beta" in objective else {}),
        "seed": cfg.seed,
        "lr": cfg.lr,
        "batch_size": cfg.data.batch_size,
        "model": cfg.model.net._target_.rsplit(".", 1)[-1],
        "latent_dim": cfg.model.net.latent_dim,
        "hidden_dims": str(list(OmegaConf.select(cfg, "model.net.hidden_dims", default=[]))),  # none: fixed layers
        "max_epochs": cfg.trainer.max_epochs,
        "precision": str(cfg.trainer.precision),
    }


def check_installed(loggers: DictConfig | None) -> None:
    """Refuse, in one line, a configured logger whose package is missing, naming the extra to install."""
    for name, node in (loggers or {}).items():
        package = (cls := logger_kind(node)) and cls.extra
        if package and importlib.util.find_spec(package) is None:
            raise SweepRefused(f"logger.{name} needs the {package} package: pip install 'betavae[{package}]' "
                           f"(in a checkout: pip install -e '.[{package}]')")  # fmt: skip


def store_of(node: DictConfig) -> tuple[str, str] | None:
    """(its package, its store) of a configured logger whose run lives in a store (MLflow, W&B); None for the
    others."""
    cls = logger_kind(node)
    return (cls.extra, cls.configured_store(node)) if cls is not None and cls.extra else None


def reachable(loggers: DictConfig | None, unreachable: str) -> dict[str, DictConfig]:
    """The configured loggers whose tracking stores answer, asked within seconds before any work. One that does
    not stops the job in one line naming its store (``unreachable``: "stop"), or is left out of this part of
    the job with one warning line ("skip")."""
    kept = {}
    for name, node in (loggers or {}).items():
        where = store_of(node)
        reason = tracking.probe(*where) if where else None
        if reason is None:
            kept[name] = node
            continue
        message = f"logger.{name}: its tracking store {where[1]} does not answer ({reason})"
        if unreachable == "stop":
            raise SweepRefused(f"{message}; start it, or train without it: tracking_unreachable=skip")
        log.warning("%s; this part of the job goes on without it (tracking_unreachable=skip)", message)
    return kept


def make(name: str, node: DictConfig, runs: tracking.TrackedRuns) -> Logger:
    """Logger ``name`` of the config, reopening the job's own run in its store (tracking.json), or starting one:
    for W&B with an id chosen now, so it can be recorded before the run starts. A recorded MLflow run the store
    no longer has gets one warning line and a new run."""
    where = store_of(node)
    recorded = runs.get(name, where[1]) if where else None
    extra: dict[str, Any] = {}
    if where and where[0] == "mlflow" and recorded:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            MlflowClient(where[1]).get_run(recorded["run_id"])
            extra = {"run_id": recorded["run_id"]}
        except MlflowException as err:
            log.warning("logger.%s: tracking.json's run %s is not in %s (%s); starting a new run", name,
                        recorded["run_id"], where[1], first_line(err))  # fmt: skip
            recorded = None
    elif where and where[0] == "wandb":
        extra = {"id": recorded["id"] if recorded else uuid.uuid4().hex[:8]}  # WandbLogger resumes it ("allow")
    if recorded and recorded.get("missed"):
        first = recorded["missed"][0]
        log.warning("logger.%s: its run in %s misses what %d earlier part(s) could not send, from step %s (%s); "
                    "the job's TensorBoard events, figures/ and metrics.json have it", name, where[1],
                    len(recorded["missed"]), first["at_step"], first["reason"])  # fmt: skip
    logger = instantiate(node, **extra)
    if isinstance(logger, Tolerant):  # names itself in its warnings
        logger.label = f"logger.{name}"
    return logger


def record_ids(loggers: dict[str, Logger], runs: tracking.TrackedRuns) -> None:
    """Record in tracking.json, for each logger whose run lives in a store (MLflow, W&B), what reopens its run
    there, keeping what it records of other loggers and stores."""
    for name, logger in loggers.items():
        kind(logger).record_run(name, runs)
    runs.write()


def report(loggers: dict[str, Logger], runs: tracking.TrackedRuns) -> None:
    """At a job's end: say, and record in tracking.json, what each tracked run missed in this part."""
    for name, logger in loggers.items():
        kind(logger).record_missed(name, runs)
    runs.write()


def finish(loggers: list[Logger], status: str) -> None:
    """End the job's runs on every way out (TensorBoard flushed, the MLflow run marked, the W&B run finished)."""
    for logger in loggers:
        kind(logger).end_run(status)


def log_image(logger: Logger, name: str, image: np.ndarray, step: int) -> None:
    """Add an HWC uint8 image at ``step``, as the logger's kind does (TensorBoard's images, MLflow's image
    artifacts, a W&B media panel)."""
    kind(logger).publish_image(name, image, step)


def log_file(logger: Logger, path: Path) -> None:
    """Attach a file to the run (MLflow artifact, W&B run file); TensorBoard and CSV have the job directory."""
    kind(logger).publish_file(path)


def log_results(logger: Logger, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """The hyperparameters with the final test metrics: TensorBoard's HPARAMS tab, MLflow's params (its test
    metrics are logged at their step already), W&B's config and run summary."""
    kind(logger).publish_results(hparams, metrics)


def check_stores(run_dir: Path, unreachable: str) -> set[str]:
    """The stores of the job's recorded runs that do not answer, asked within seconds (evaluate, before any
    work). A missing package, or such a store with ``unreachable`` "stop", is a RunError in one line; with
    "skip", a warning."""
    down = set()
    for name, store, entry in tracking.TrackedRuns(run_dir).entries():
        kind = "mlflow" if "run_id" in entry else "wandb"
        if importlib.util.find_spec(kind) is None:
            raise RunError(f"tracking.json names a run of logger.{name}, and the {kind} package is missing: "
                           f"pip install 'betavae[{kind}]' (or remove {JobDir(Path(run_dir)).tracking})")  # fmt: skip
        if reason := tracking.probe(kind, store, create=False):
            message = f"logger.{name}: its tracking store {store} does not answer ({reason})"
            if unreachable == "stop":
                raise RunError(f"{message}; evaluate again once it answers, or with tracking_unreachable=skip")
            log.warning("%s; evaluate's results are not sent to it (tracking_unreachable=skip)", message)
            down.add(store)
    return down


def attach(run_dir: Path, path: Path, metrics: dict[str, float], unreachable: str = "stop") -> None:
    """Add a file and its metrics to every MLflow and W&B run the job records (evaluate's evaluation.json),
    asking each store first (`check_stores`). A store that fails during the calls is a RunError in one line,
    the file kept."""
    down = check_stores(run_dir, unreachable)
    for name, store, entry in tracking.TrackedRuns(run_dir).entries():
        if store in down:
            continue
        kind = "mlflow" if "run_id" in entry else "wandb"
        try:
            (send_to_mlflow if kind == "mlflow" else send_to_wandb)(entry, store, path, metrics)
        except Exception as err:  # the store failed during the calls: the file stays, the run is reported
            raise RunError(f"logger.{name}: sending {path.name} to {store} failed ({first_line(err)})") from None


def send_to_mlflow(entry: dict[str, Any], store: str, path: Path, metrics: dict[str, float]) -> None:
    """evaluate's metrics, at the step of training's test and the time they were computed, and its file."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    tested = client.get_metric_history(entry["run_id"], registry.LOSS)  # at the step of training's test
    step, stamp = tested[-1].step if tested else 0, int(time.time() * 1000)
    client.log_batch(entry["run_id"], metrics=[Metric(k, float(v), stamp, step) for k, v in metrics.items()])
    client.log_artifact(entry["run_id"], str(path))


def send_to_wandb(entry: dict[str, Any], store: str, path: Path, metrics: dict[str, float]) -> None:
    """evaluate's metrics into the W&B run's summary, and its file."""
    import wandb

    run = wandb.init(id=entry["id"], project=entry["project"], dir=entry["dir"], mode=entry["mode"], resume="allow")
    run.summary.update(metrics)
    run.save(str(path), base_path=str(Path(path).parent), policy="now")
    run.finish()
