"""What every logger gets beyond Lightning's scalars (images, the hyperparameters with the final test metrics,
files), and the ids in a job's tracking.json that let a continued job, or evaluate, log to the same MLflow or
W&B run. The logger classes are Lightning's own; their packages (the mlflow and wandb extras) are imported
only by the loggers that need them."""

from __future__ import annotations

import importlib.util
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from betavae.errors import SweepRefused
from betavae.files import read_json, write_json
from betavae.runs import likelihood_label

EXTRAS = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}  # class → the extra (and package) it needs
IDS = "tracking.json"


def job_name() -> str:
    """A job's name for the trackers, as TensorBoard shows it: its directory's name (its overrides in a sweep),
    which a continued job keeps whatever its own overrides."""
    return Path(HydraConfig.get().runtime.output_dir).name


def sweep_name() -> str:
    """The multirun directory a job belongs to, grouping its sweep's runs; "" for a single run."""
    hydra_cfg = HydraConfig.get()
    return str(hydra_cfg.sweep.dir) if hydra_cfg.mode == RunMode.MULTIRUN else ""


def logger_class(node: DictConfig) -> str:
    """The class name a logger config builds (its `_target_`'s last part)."""
    return str(node.get("_target_", "")).rsplit(".", 1)[-1]


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a β sweep varies, flat: TensorBoard's HPARAMS tab, MLflow's params, W&B's config."""
    objective = OmegaConf.to_container(cfg.objective, resolve=True)
    return {
        "objective": objective.pop("_target_").rsplit(".", 1)[-1],
        **{f"objective.{k}": v for k, v in objective.items()},
        "likelihood": likelihood_label(cfg),
        "beta": cfg.beta,
        "seed": cfg.seed,
        "lr": cfg.lr,
        "batch_size": cfg.data.batch_size,
        "model": cfg.model.net._target_.rsplit(".", 1)[-1],
        "latent_dim": cfg.model.net.latent_dim,
        "hidden_dims": str(list(cfg.model.net.hidden_dims)),
        "max_epochs": cfg.trainer.max_epochs,
        "precision": str(cfg.trainer.precision),
    }


def check_installed(loggers: DictConfig | None) -> None:
    """Refuse, in one line, a configured logger whose package is missing, naming the extra to install."""
    for name, node in (loggers or {}).items():
        package = EXTRAS.get(logger_class(node))
        if package and importlib.util.find_spec(package) is None:
            raise SweepRefused(f"logger.{name} needs the {package} package: pip install 'betavae[{package}]' "
                           f"(in a checkout: pip install -e '.[{package}]')")  # fmt: skip


def continuing(name: str, node: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Constructor arguments that make logger ``name`` log to the job's own run: the MLflow run or W&B id
    recorded in tracking.json, or for W&B a new id chosen now (so it can be recorded before the run starts)."""
    kind = logger_class(node)
    recorded = (read_json(Path(output_dir) / IDS) or {}).get(name, {})
    if kind == "MLFlowLogger" and recorded.get("run_id"):
        return {"run_id": recorded["run_id"]}
    if kind == "WandbLogger":
        return {"id": recorded.get("id") or uuid.uuid4().hex[:8]}  # WandbLogger resumes it ("allow")
    return {}


def record_ids(loggers: dict[str, Logger], output_dir: Path) -> None:
    """Write tracking.json: for each MLflow or W&B logger, what reopens its run (creating the MLflow run now)."""
    ids = {}
    for name, logger in loggers.items():
        if isinstance(logger, MLFlowLogger):
            ids[name] = {"logger": "mlflow", "tracking_uri": logger._tracking_uri, "run_id": logger.run_id,
                         "experiment_id": logger.experiment_id}  # fmt: skip
        elif isinstance(logger, WandbLogger):
            ids[name] = {"logger": "wandb", "id": logger._id, "project": logger._project, "dir": logger.save_dir,
                         "mode": "offline" if logger._offline else "online"}  # fmt: skip
    if ids:
        write_json(Path(output_dir) / IDS, ids)


def finish(loggers: list[Logger], status: str) -> None:
    """End the job's runs on every way out: flush TensorBoard, mark the MLflow run, and finish the W&B run, which
    would otherwise stay the process's active run and take the next job's logging in a multirun."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            if logger._experiment is not None:
                logger.experiment.finish(exit_code=0 if status == "success" else 1)
        else:
            logger.finalize(status)


def log_image(logger: Logger, name: str, image: np.ndarray, step: int) -> None:
    """Add an HWC uint8 image at ``step``: TensorBoard's images, MLflow's image artifacts, a W&B media panel."""
    if isinstance(logger, TensorBoardLogger):
        logger.experiment.add_image(name, image, global_step=step, dataformats="HWC")
    elif isinstance(logger, MLFlowLogger):
        logger.experiment.log_image(logger.run_id, image, key=name, step=step)
    elif isinstance(logger, WandbLogger):
        logger.log_image(key=name, images=[image], step=step)


def log_file(logger: Logger, path: Path) -> None:
    """Attach a file to the run (MLflow artifact, W&B run file); TensorBoard and CSV have the job directory."""
    if isinstance(logger, MLFlowLogger):
        logger.experiment.log_artifact(logger.run_id, str(path))
    elif isinstance(logger, WandbLogger):
        logger.experiment.save(str(path), base_path=str(Path(path).parent), policy="now")


def log_results(logger: Logger, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """The hyperparameters with the final test metrics: TensorBoard's HPARAMS tab, MLflow's params (its test
    metrics are logged at their step already), W&B's config and run summary. MLflow's params are write-once:
    one a continued run changed (trainer.max_epochs) keeps its first value and the run gets a tag with the new."""
    if isinstance(logger, TensorBoardLogger):
        logger.log_hyperparams(hparams, metrics)
    elif isinstance(logger, MLFlowLogger):
        logged = logger.experiment.get_run(logger.run_id).data.params
        changed = {k: str(v) for k, v in hparams.items() if k in logged and logged[k] != str(v)}
        logger.log_hyperparams({k: v for k, v in hparams.items() if k not in changed})
        for key, value in changed.items():
            logger.experiment.set_tag(logger.run_id, key, value)
    elif isinstance(logger, WandbLogger):
        logger.log_hyperparams(hparams)
        logger.experiment.summary.update(metrics)
    else:
        logger.log_hyperparams(hparams)


def attach(run_dir: Path, path: Path, metrics: dict[str, float]) -> None:
    """Add a file and its metrics to the MLflow and W&B runs of a finished job (evaluate's evaluation.json)."""
    for entry in (read_json(Path(run_dir) / IDS) or {}).values():
        if entry["logger"] == "mlflow":
            from mlflow.entities import Metric
            from mlflow.tracking import MlflowClient

            client = MlflowClient(entry["tracking_uri"])
            tested = client.get_metric_history(entry["run_id"], "test/loss")  # at the step of training's test
            step, stamp = tested[-1].step if tested else 0, int(time.time() * 1000)
            client.log_batch(entry["run_id"], metrics=[Metric(k, float(v), stamp, step) for k, v in metrics.items()])
            client.log_artifact(entry["run_id"], str(path))
        elif entry["logger"] == "wandb":
            import wandb

            run = wandb.init(id=entry["id"], project=entry["project"], dir=entry["dir"], mode=entry["mode"],
                             resume="allow")  # fmt: skip
            run.summary.update(metrics)
            run.save(str(path), base_path=str(Path(path).parent), policy="now")
            run.finish()
