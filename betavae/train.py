"""`python -m betavae.train`: fit one β-VAE per Hydra job, test its best checkpoint, write metrics.json.

A run directory holds one experiment. A job started in a directory that holds its work continues it, from its
newest intact checkpoint (`betavae.model.checkpoints`), and is refused if its config changes more than
`continue_may_change` allows (`betavae.runs.continuation`); a job whose metrics.json says it finished is not run
again. A job that fails records why in its metrics.json (`betavae.runs.failures`): a single run then exits
non-zero with one line, a multirun goes on with the other jobs (the sweep summary exits non-zero at the end).

`train(cfg)` runs a job in process, as the command does, and returns its record. This module imports neither torch
nor Lightning until the job's own keys have passed their checks, so a typo answers at once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from betavae.base.cli import quote_path_arguments
from betavae.base.config import composed, is_int, require, require_positive, require_seed, require_weight
from betavae.base.errors import JobStopped, RunError
from betavae.metrics import registry
from betavae.runs import process
from betavae.runs.continuation import check_continuation, finished, record_part
from betavae.runs.failures import stop
from betavae.runs.layout import RunRecord
from betavae.runs.names import job_dirname, job_name, resume_command, sweep_name

log = logging.getLogger(__name__)
OmegaConf.register_new_resolver("job_gpu", process.job_gpu, replace=True)
OmegaConf.register_new_resolver("job_name", job_name, replace=True)
OmegaConf.register_new_resolver("sweep_name", sweep_name, replace=True)
OmegaConf.register_new_resolver("job_dirname", lambda: job_dirname(*job_overrides()), replace=True)


def job_overrides() -> tuple[list[str], list[str]]:
    """This job's overrides and the keys left out of its directory's name (``hydra.sweep.subdir``)."""
    hydra_cfg = HydraConfig.get()
    return list(hydra_cfg.overrides.task), list(hydra_cfg.job.config.override_dirname.exclude_keys)


def chosen(group: DictConfig | None, name: str) -> dict[str, DictConfig]:
    """The entries of a name → config mapping (the callbacks group) that build something (have a `_target_`). An
    entry without one holds keys an experiment or an override set for an entry the group's choice does not
    include (`experiment=shapes_smoke callbacks=none`): it is left out, with one line."""
    entries = {}
    for key, node in (group or {}).items():
        if isinstance(node, DictConfig) and "_target_" in node:
            entries[key] = node
        else:
            log.info("%s.%s is set, but %s=... does not choose it: left out", name, key, name)
    return entries


def check_job(cfg: DictConfig) -> None:
    """Refuse, before any work and before torch is imported, the job's own keys: those no constructor checks,
    and β and the learning rate, which the objective and the module check again by the same rules."""
    seed, epochs = cfg.seed, cfg.trainer.max_epochs
    require_seed("seed", seed)
    require_weight("beta", cfg.beta)
    require_positive("lr", cfg.lr)
    require(is_int(epochs, 1), "trainer.max_epochs", epochs, "must be an integer >= 1")
    tracking = cfg.tracking_unreachable
    require(tracking in ("stop", "skip"), "tracking_unreachable", tracking, "must be stop or skip")
    require(isinstance(cfg.flush_denormal, bool), "flush_denormal", cfg.flush_denormal, "must be true or false")
    ckpt = cfg.ckpt_path
    require(
        ckpt is None or Path(ckpt).expanduser().is_file(), "ckpt_path", ckpt, "must be null or an existing checkpoint"
    )


def job_config(overrides: Sequence[str] = (), output_dir: Path | str = ".") -> DictConfig:
    """The config `python -m betavae.train <overrides> hydra.run.dir=<output_dir>` runs, for `train` in process (a
    notebook, a test): composed from the package's configs, with Hydra's part of the job (its directory, its
    overrides) set as the command's is, which the configs' `${hydra:runtime.output_dir}` read."""
    output_dir = Path(output_dir).expanduser().absolute()
    cfg = composed("train", [*overrides, f"hydra.run.dir={output_dir}"], hydra=True)
    cfg.hydra.runtime.output_dir = str(output_dir)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # the job's own config, as the command's holds it
    return cfg


def train(cfg: DictConfig) -> RunRecord | None:
    """Run one job as `python -m betavae.train` does and return its record: hold its directory's lock, fit
    (continuing the directory's own checkpoint) and test, or record why it stopped (metrics.json) and raise
    `JobStopped` with the line the command exits with. In a multirun a job that failed alone returns its record
    (None when it was refused before any work) and the sweep goes on. Where and how the job runs is Hydra's job's
    (`job_config` sets it for a job in process)."""
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    log.info("Output directory: %s", output_dir)
    log.debug("Config:\n%s", OmegaConf.to_yaml(cfg))
    started, resume = time.time(), resume_command(hydra_cfg)
    with process.job_lock(output_dir) as release:  # refuses a second run in the same directory, before any work
        try:
            with process.raise_on_sigterm(resume) as sigterm:
                return fit_job(cfg, output_dir, hydra_cfg, sigterm)
        except BaseException as err:
            end_sweep = lambda: summarize_stopped(release, hydra_cfg, cfg)  # noqa: E731
            return stop(err, cfg, output_dir, started, hydra_cfg, end_sweep, resume)
        finally:
            process.end_process_group()


def fit_job(cfg: DictConfig, output_dir: Path, hydra_cfg: DictConfig, sigterm: process.Sigterm) -> RunRecord:
    """Fit (continuing the job's own checkpoint; a SIGTERM stops training at the loop's next safe point), test the
    best checkpoint, log hparams with test metrics, and return the job's record."""
    changed = check_continuation(output_dir, cfg)
    if done := finished(cfg, output_dir):
        log.info("Already finished (%s); delete it to train this job again", output_dir / RunRecord.FILE)
        return done
    check_job(cfg)
    # The machinery, imported once the job's own keys passed (torch and Lightning take seconds to import).
    import lightning.pytorch as pl
    import torch
    from hydra.utils import instantiate

    from betavae.base.config import instantiate_copy
    from betavae.base.files import remove_temporaries
    from betavae.loggers import job as loggers
    from betavae.loggers.tracking import TrackedRuns
    from betavae.metrics import across
    from betavae.metrics.registry import Stage
    from betavae.metrics.suite import SWEEP_SCORERS, Suite
    from betavae.model.checkpoints import checkpoint_callbacks, resume_point
    from betavae.runs import devices

    logger_group = chosen(cfg.get("logger"), "logger")
    loggers.check_installed(logger_group)
    logger_nodes = loggers.reachable(logger_group, cfg.tracking_unreachable)  # before any work
    parallel = process.parallel_jobs(hydra_cfg)
    log.info("torch threads: %d (%d parallel job(s) on this machine)", devices.set_threads(parallel), parallel)
    torch.set_flush_denormal(cfg.flush_denormal)
    suite = Suite.configured(cfg, Stage.TEST)
    across.scorers(SWEEP_SCORERS, cfg)  # the sweep summary's settings (udr.*), refused now, not after the sweep
    scores = instantiate(cfg.scores, suite=suite)  # its notes go into the job's record
    callbacks = [*(instantiate(node) for node in chosen(cfg.callbacks, "callbacks").values()), scores]
    runs = TrackedRuns(output_dir)
    tracked = {name: loggers.make(name, node, runs) for name, node in logger_nodes.items()}
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=list(tracked.values()))
    devices.check_launch(trainer, hydra_cfg)
    devices.warn_slow_precision(trainer)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.check_processes(trainer.world_size)  # before Lightning starts the other DDP processes
    module = instantiate_copy(cfg, "model")
    try:
        resume = resume_point(cfg, module, checkpoint_callbacks(trainer)[1])
        if process.rank() == 0:  # known before Lightning starts the other DDP processes
            remove_temporaries(output_dir)  # of a killed write: this job holds the directory's lock
            record_part(output_dir, cfg, hydra_cfg, changed)
            loggers.record_ids(tracked, runs)
        record = fit_and_test(cfg, output_dir, trainer, module, datamodule, resume, scores, sigterm)
    except BaseException:
        devices.stop_other_processes(trainer)
        loggers.finish(trainer.loggers, "failed")
        raise
    else:
        loggers.finish(trainer.loggers, "success")
    finally:
        if process.rank() == 0:
            loggers.report(tracked, runs)  # what the tracked runs missed, if a store failed
    return record


def fit_and_test(
    cfg: DictConfig,
    output_dir: Path,
    trainer: Any,
    module: Any,
    datamodule: Any,
    resume: Path | None,
    scores: Any,
    sigterm: process.Sigterm,
) -> RunRecord:
    """Fit from ``resume`` (None: from scratch), a SIGTERM left to the training loop (``sigterm``), test the best
    checkpoint, log hparams with the test metrics; rank 0 writes metrics.json (with the notes of the test pass's
    ``scores``) and gives it to the loggers."""
    from lightning.pytorch.callbacks import Timer

    from betavae.loggers import job as loggers
    from betavae.model.checkpoints import checkpoint_callbacks

    best_callback, last_callback = checkpoint_callbacks(trainer)
    with sigterm.deferred():
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    wall_time = round(timer.time_elapsed("train"), 2) if timer else None  # now: test() reloads the Timer's state
    best_path = best_callback and best_callback.best_model_path
    best = best_path or (last_callback and last_callback.last_model_path) or None  # None: test the module as is
    trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("test/")}
    for logger in trainer.loggers:
        loggers.log_results(logger, loggers.hparams(cfg), metrics)
    best_relative = os.path.relpath(best, output_dir) if best else None
    record = RunRecord.of_finished_job(cfg, metrics, trainer.current_epoch, wall_time, best_relative,
                                       module.objective.weight, scores.notes)  # fmt: skip
    if trainer.is_global_zero:
        path = record.write(output_dir)
        for logger in trainer.loggers:
            loggers.log_file(logger, path)
    return record


def summarize_stopped(release: Callable[[], None], hydra_cfg: DictConfig, cfg: DictConfig) -> None:
    """Give up the job's lock, then summarise its interrupted sweep (listing the job as stopped, not training)."""
    from betavae.summary import summarize

    release()
    summarize(Path(hydra_cfg.sweep.dir), cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns test/loss so Hydra sweepers can optimise it (None when the job failed)."""
    try:
        record = train(cfg)
    except JobStopped as err:
        raise SystemExit(err.line) from None
    except RunError as err:  # the lock is held by another run
        raise SystemExit(f"error: {err}") from None
    return record.metrics.get(registry.LOSS) if record else None


if __name__ == "__main__":
    quote_path_arguments()
    main()
