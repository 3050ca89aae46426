"""`python -m betavae.evaluate run_dir=<job> | sweep_dir=<multirun>`: metrics and figures from best checkpoints.

For each run, the evaluation suite (`betavae.metrics.suite`) at the evaluate stage: −ELBO and an importance-weighted NLL
estimate with their standard errors and the IW effective sample size, active units, the KL's decomposition and
the linear probes' scores, all on the first `eval.limit` test images; FID (as in training); on data with known
factors the disentanglement scores (and disentanglement.npz); and the figures. Written to the run's
evaluation.json and figures/ (and the metrics and evaluation.json to the run's MLflow and W&B runs, if it has
them). Checkpoints are read with torch.load(weights_only=True).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from betavae.base.cli import quote_path_arguments
from betavae.base.config import config_error, is_int, require
from betavae.base.errors import ConfigError, DataError, RunError, first_line
from betavae.base.files import write_json
from betavae.figures import draw as figures
from betavae.loggers import job as loggers
from betavae.metrics import registry
from betavae.metrics.registry import Scope, Stage
from betavae.metrics.suite import Suite
from betavae.model.run import data_of, load_run
from betavae.runs.continuation import over_recorded, run_config
from betavae.runs.layout import JobDir, job_dirs
from betavae.runs.process import job_lock
from betavae.summarize import with_recorded_udr
from betavae.summary import summarize

log = logging.getLogger(__name__)


def recorded() -> list[str]:
    """The settings a run records and evaluate uses again, as trained: the figures', and those of every metric
    family whose settings are one key in training and in evaluate (fid, disentanglement: the registry's), each key
    once (five families share disentanglement's)."""
    same = [
        f.settings[Stage.TEST]
        for f in registry.families(Scope.PER_RUN)
        if f.settings.get(Stage.TEST) is not None and f.settings.get(Stage.TEST) == f.settings.get(Stage.EVALUATE)
    ]
    return list(dict.fromkeys(["figures", *same]))


def run_settings(run_config: DictConfig, cfg: DictConfig, key: str, overrides: list[str]) -> tuple[DictConfig, str]:
    """Settings ``key`` for one run: those it was trained with (its .hydra/config.yaml), with evaluate's own
    `<key>.<name>=` ``overrides`` on top; evaluate's where the run recorded none. And which they are, in words."""
    settings, given = over_recorded(run_config.get(key), key, overrides)
    if settings is None:
        return cfg[key], f"evaluate's (the run recorded no {key})"
    return settings, f"the run's{given}"


def configured_for(
    run_dir: Path, run_config: DictConfig, cfg: DictConfig, overrides: list[str]
) -> tuple[Suite, DictConfig]:
    """The suite and the figure settings for one run: the fid and disentanglement families with the settings it was
    trained with (evaluate's overrides on top; off where evaluate turns them off), each said in one line."""
    chosen = {}
    for key in recorded():
        if key in cfg:
            chosen[key], which = run_settings(run_config, cfg, key, overrides)
            log.info("%s: %s settings: %s", run_dir, key, which)
    return Suite.configured(OmegaConf.merge(cfg, chosen), Stage.EVALUATE), chosen.get("figures")


def evaluate_run(run_dir: Path, cfg: DictConfig, overrides: list[str]) -> dict[str, Any]:
    """Evaluate one run's best checkpoint with the suite (its settings: `configured_for`) and its figures; write
    and return evaluation.json. A family with no meaning on the run's data (FID, the probe off Fashion-MNIST) is
    left out, with one line."""
    loggers.check_stores(run_dir, cfg.tracking_unreachable)  # within seconds, before any work
    device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    run = load_run(run_dir, device)
    suite, figure_settings = configured_for(run_dir, run.config, cfg, overrides)
    module, data, job = run.module, data_of(run.config, cfg.data.path), JobDir(Path(run_dir))
    for line in suite.announce(data):
        log.info("%s: %s", run_dir, line)
    label = module.objective.label
    evaluation = suite.evaluate(run.model, data, cfg.eval.limit, label)
    if cfg.eval.figures:
        for name in figures.END_OF_FIT:
            image, document = figures.draw(name, run.model, data, label, **figure_settings.get(name, {}))
            evaluation.figures[name] = image
            if document is not None:
                evaluation.documents[name] = document
    job.write_arrays(evaluation.arrays)
    job.write_figures(evaluation.figures, evaluation.documents)
    result = {"run_dir": str(run_dir), "checkpoint": str(run.checkpoint), "weight": module.objective.weight,
              **evaluation.metrics, **evaluation.settings, "notes": evaluation.notes}  # fmt: skip
    for note in evaluation.notes:
        log.warning("%s: %s", run_dir, note)
    path = write_json(job.evaluation, result)
    try:
        loggers.attach(run_dir, path, registry.scores(result), cfg.tracking_unreachable)
    except RunError as err:  # the run is evaluated: only its tracked run misses the results, as in training
        log.warning("%s: evaluated (%s written); its tracked run misses the results: %s", run_dir, path.name, err)
    log.info("%s: %s", run_dir, {k: round(v, 2) if isinstance(v, float) else v for k, v in evaluation.metrics.items()})
    return result


def check_eval(cfg: DictConfig) -> None:
    """Refuse, before any work, sample counts and limits that would give no estimate or a wrong one."""
    for key in ("iw_samples", "elbo_samples", "batch_images", "batch_samples"):
        value = cfg.eval[key]
        require(is_int(value, 1), f"eval.{key}", value, "must be an integer >= 1")
    limit = cfg.eval.limit
    require(limit is None or is_int(limit, 1), "eval.limit", limit, "must be null or >= 1")
    for key in ("probe", "figures"):
        require(isinstance(cfg.eval[key], bool), f"eval.{key}", cfg.eval[key], "must be true or false")
    tracking = cfg.tracking_unreachable
    require(tracking in ("stop", "skip"), "tracking_unreachable", tracking, "must be stop or skip")


def runs_to_evaluate(cfg: DictConfig) -> list[Path]:
    """The run directories named by run_dir= or sweep_dir= (exactly one of them)."""
    if bool(cfg.run_dir) == bool(cfg.sweep_dir):
        raise ConfigError("give exactly one of run_dir=<job directory> or sweep_dir=<multirun directory>")
    if cfg.run_dir:
        return [Path(cfg.run_dir)]
    runs = job_dirs(Path(cfg.sweep_dir))
    if not runs:
        raise RunError(f"no job directories (with .hydra/config.yaml) in {cfg.sweep_dir}")
    return runs


def evaluate(cfg: DictConfig, overrides: Sequence[str] = ()) -> dict[Path, dict[str, Any]]:
    """Evaluate each run as `python -m betavae.evaluate` does and return what it wrote (each evaluation.json's
    contents, by run directory); then, for a sweep, write its summary. A run that cannot be evaluated is reported
    and the others go on; then `RunError` says how many failed. ``overrides``: the command line's, whose `fid.*`,
    `disentanglement.*` and `figures.*` go over each run's recorded settings."""
    overrides = list(overrides)
    try:
        check_eval(cfg)
        runs = runs_to_evaluate(cfg)
        Suite.configured(cfg, Stage.EVALUATE)  # evaluate's own settings, refused before any work
    except Exception as err:
        if isinstance(err, RunError | ConfigError):
            raise
        if (message := config_error(err, cfg)) is None:
            raise
        raise ConfigError(message) from None
    results, failed = {}, []
    for run in runs:
        try:
            run_config(run)  # a run directory, before the lock creates anything in it
            with job_lock(run):  # not while training (or another evaluate) writes into the run
                results[run] = evaluate_run(run, cfg, overrides)
        except (RunError, ConfigError, DataError) as err:
            log.error("%s: %s", run, err)
            failed.append(f"{run} ({first_line(err)})")
    if cfg.sweep_dir:
        sweep = Path(cfg.sweep_dir)
        log.info("%s", summarize(sweep, with_recorded_udr(cfg, sweep, overrides))[0].rstrip("\n"))
    if failed:
        raise RunError(f"{len(failed)} of {len(runs)} runs could not be evaluated: {'; '.join(failed)}")
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Evaluate each run; a run that cannot be evaluated is reported and the others go on."""
    try:
        evaluate(cfg, HydraConfig.get().overrides.task)
    except (RunError, ConfigError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments()
    main()
