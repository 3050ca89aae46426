"""`python -m betavae.train`: fit one β-VAE per Hydra job, test its best checkpoint, write metrics.json.

A run directory holds one experiment. A job started in a directory that holds its work continues it, from its
newest intact checkpoint, and is refused if its config changes more than `continue_may_change` allows; a job
whose metrics.json says it finished is not run again. A job that fails records why in its metrics.json: a
single run then exits non-zero with one line, a multirun goes on with the other jobs (the sweep summary exits
non-zero at the end).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
import traceback
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from omegaconf import DictConfig, OmegaConf

from betavae import loggers
from betavae.cli import quote_path_arguments
from betavae.config import config_error, instantiate_copy, is_int, require
from betavae.data import DataError
from betavae.files import RunError, disk_full, first_line, load_checkpoint, read_json, remove_temporaries, write_json
from betavae.jobs import (
    Terminated,
    cpu_has_bf16,
    in_process_group,
    job_gpu,
    job_lock,
    raise_on_sigterm,
    set_threads,
)
from betavae.model import named
from betavae.runs import Refused, SweepRefused, check_continuation, record_failure, record_part
from betavae.summarize import summarize

log = logging.getLogger(__name__)
PATH_KEYS = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "data.root", "fid.cache_dir", "fid.inception_weights")
KNOWN_FAILURES = (DataError, RunError, torch.OutOfMemoryError, MemoryError)  # reported in one line
OmegaConf.register_new_resolver("job_gpu", job_gpu, replace=True)
OmegaConf.register_new_resolver("job_name", loggers.job_name, replace=True)
OmegaConf.register_new_resolver("sweep_name", loggers.sweep_name, replace=True)


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name → config mapping (the callbacks and logger groups)."""
    return [instantiate(node) for node in (group or {}).values()]


def likelihood_label(cfg: DictConfig) -> str:
    """The likelihood's class name, with ' binarized' when the data are binarised (likelihood=binarized)."""
    return cfg.likelihood._target_.rsplit(".", 1)[-1] + (" binarized" if cfg.data.get("binarize") else "")


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a β sweep varies, flat, for TensorBoard's HPARAMS tab."""
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


def check_job(cfg: DictConfig) -> None:
    """Refuse, before any work, the job keys that no constructor checks."""
    seed, epochs = cfg.seed, cfg.trainer.max_epochs
    require(is_int(seed, 0) and seed < 2**32, "seed", seed, "must be an integer in [0, 2**32)")
    require(is_int(epochs, 1), "trainer.max_epochs", epochs, "must be an integer >= 1")
    ckpt = cfg.ckpt_path
    require(
        ckpt is None or Path(ckpt).expanduser().is_file(), "ckpt_path", ckpt, "must be null or an existing checkpoint"
    )


class LaunchRefused(SweepRefused):
    """A multirun job that Lightning would start its DDP processes for by re-running the command line."""


def check_launch(trainer: pl.Trainer, multirun: bool) -> None:
    """Refuse, before any work, DDP in a multirun when Lightning starts the processes itself: it re-runs the
    command line for each, `-m` and the sweep included, so each process would run a sweep of its own."""
    launcher = trainer.strategy.launcher
    if (
        multirun
        and isinstance(launcher, _SubprocessScriptLauncher)
        and not launcher.cluster_environment.creates_processes_externally
        and launcher.num_processes > 1
    ):
        raise LaunchRefused(
            f"trainer.strategy=ddp on {launcher.num_processes} devices starts its processes by re-running the "
            "command, which a multirun (-m) cannot do: sweep with hydra/launcher=slurm (one task per device), "
            "or run each job alone (python -m betavae.train trainer=ddp hydra.run.dir=<dir> ...)"
        )


def warn_slow_precision(trainer: pl.Trainer) -> None:
    """Warn when bfloat16 would run emulated: on a CPU without bfloat16 instructions its matrix products ran
    50× slower than float32's here (AVX2 only; docs/sweeps.md, GPU and multi-GPU)."""
    precision = str(trainer.precision)
    if precision.startswith("bf16") and isinstance(trainer.accelerator, CPUAccelerator) and not cpu_has_bf16():
        log.warning(
            "trainer.precision=%s on a CPU without bfloat16 instructions (AVX512-BF16 or AMX): its matrix "
            "products are emulated, far slower than with trainer.precision=32-true",
            precision,
        )


def stop_other_processes(trainer: pl.Trainer) -> None:
    """Kill the DDP processes this one started, so none is left waiting for it in a collective (NCCL would
    wait 30 minutes); a no-op in a process that started none."""
    if isinstance(launcher := trainer.strategy.launcher, _SubprocessScriptLauncher):
        launcher.kill(signal.SIGKILL)


def checkpoints(trainer: pl.Trainer) -> tuple[ModelCheckpoint | None, ModelCheckpoint | None]:
    """The job's (best by a monitored metric, last) ModelCheckpoint callbacks, either None if not configured."""
    best = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.monitor), None)
    last = next((c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and not c.monitor), None)
    return best, last


def own_checkpoint(directory: Path) -> tuple[Path | None, dict[str, Any] | None]:
    """The job's newest intact checkpoint in ``directory`` (last.ckpt, else the newest other) and its contents.
    Process 0 sets a damaged one aside (renamed, with a warning), so a kill or a full disk is never a dead end;
    the other DDP processes skip it alike."""
    found = sorted(Path(directory).glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime))
    for path in reversed(found):
        try:
            return path, load_checkpoint(path)
        except RunError as err:
            if rank_zero_only.rank == 0:
                aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                path.replace(aside)
                log.warning("%s; set aside as %s, continuing from the newest intact checkpoint if any", err, aside.name)
    return None, None


def check_resumable(path: Path, checkpoint: dict[str, Any], cfg: DictConfig, module: pl.LightningModule) -> None:
    """Refuse, in one line, a checkpoint this job cannot continue: another network, or more epochs trained than
    trainer.max_epochs allows."""
    saved = named((checkpoint.get("hyper_parameters") or {}).get("net") or {})
    for key, value in module.hparams["net"].items():
        if key in saved and saved[key] != value:
            where = "model" if key == "name" else f"model.net.{key}"
            raise Refused(f"{path} holds a network with {key}={saved[key]!r}, this config builds {key}={value!r} "
                          f"({where}); its weights cannot continue here")  # fmt: skip
    trained = checkpoint.get("epoch", -1) + 1  # our checkpoints are saved at the end of epoch `epoch`
    if trained > (epochs := cfg.trainer.max_epochs):
        raise Refused(f"trainer.max_epochs={epochs}: {path} has already trained {trained} epochs; give "
                      f"trainer.max_epochs={trained} or more")  # fmt: skip


def resume_point(cfg: DictConfig, module: pl.LightningModule, last: ModelCheckpoint | None) -> Path | None:
    """What to continue from: ckpt_path if given, else the job's own newest intact checkpoint. Read once with
    weights_only first, so an unusable file is refused in one line before any work."""
    if cfg.ckpt_path:
        path: Path | None = Path(cfg.ckpt_path).expanduser()
        checkpoint = load_checkpoint(path)
    elif last is not None and last.dirpath:
        path, checkpoint = own_checkpoint(Path(last.dirpath))
    else:
        path = None
    if path is None:
        return None
    check_resumable(path, checkpoint, cfg, module)
    log.info("Resuming from %s", path)
    return path


def finished(cfg: DictConfig, output_dir: Path) -> dict[str, Any] | None:
    """The job's metrics.json if it records a finished run of at least the configured epochs."""
    metrics = read_json(output_dir / "metrics.json")
    if metrics and metrics.get("status") == "ok" and metrics.get("epochs", 0) >= cfg.trainer.max_epochs:
        return metrics
    return None


def train(cfg: DictConfig, output_dir: Path, hydra_cfg: DictConfig) -> dict[str, Any]:
    """Fit (continuing the job's own checkpoint), test the best checkpoint, log hparams with test metrics, and
    return what metrics.json holds."""
    loggers.check_installed(cfg.logger)
    changed = check_continuation(output_dir, cfg)
    if done := finished(cfg, output_dir):
        log.info("Already finished (%s); delete it to train this job again", output_dir / "metrics.json")
        return done
    check_job(cfg)
    parallel, multirun = parallel_jobs(hydra_cfg), hydra_cfg.mode == RunMode.MULTIRUN
    log.info("torch threads: %d (%d parallel job(s) on this machine)", set_threads(parallel), parallel)
    torch.set_flush_denormal(cfg.flush_denormal)
    callbacks = instantiate_all(cfg.callbacks)
    tracked = {name: instantiate(node, **loggers.continuing(name, node, output_dir)) for name, node in
               (cfg.logger or {}).items()}  # fmt: skip
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=list(tracked.values()))
    check_launch(trainer, multirun)
    warn_slow_precision(trainer)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate_copy(cfg, "model")
    try:
        resume = resume_point(cfg, module, checkpoints(trainer)[1])
        if rank_zero_only.rank == 0:  # known before Lightning starts the other DDP processes
            remove_temporaries(output_dir)  # of a killed write: this job holds the directory's lock
            record_part(output_dir, cfg, hydra_cfg, changed)
            loggers.record_ids(tracked, output_dir)
        result = fit_and_test(cfg, output_dir, trainer, module, datamodule, resume)
    except BaseException:
        stop_other_processes(trainer)
        loggers.finish(trainer.loggers, "failed")
        raise
    loggers.finish(trainer.loggers, "success")
    return result


def fit_and_test(
    cfg: DictConfig,
    output_dir: Path,
    trainer: pl.Trainer,
    module: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    resume: Path | None,
) -> dict[str, Any]:
    """Fit from ``resume`` (None: from scratch), test the best checkpoint, log hparams with the test metrics;
    rank 0 writes metrics.json and gives it to the loggers."""
    best_callback, last_callback = checkpoints(trainer)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    wall_time = round(timer.time_elapsed("train"), 2) if timer else None  # now: test() reloads the Timer's state
    best_path = best_callback and best_callback.best_model_path
    best = best_path or (last_callback and last_callback.last_model_path) or None  # None: test the module as is
    trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True)
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("test/")}
    for logger in trainer.loggers:
        loggers.log_results(logger, hparams(cfg), metrics)
    result = {
        "status": "ok",
        **metrics,
        "beta": cfg.beta,
        "seed": cfg.seed,
        "objective": OmegaConf.to_container(cfg.objective, resolve=True),
        "likelihood": likelihood_label(cfg),
        "precision": str(cfg.trainer.precision),
        "epochs": trainer.current_epoch,
        "wall_time_s": wall_time,  # all parts of a resumed run
        "best_checkpoint": os.path.relpath(best, output_dir) if best else None,
    }
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", result)
        for logger in trainer.loggers:
            loggers.log_file(logger, output_dir / "metrics.json")
    return result


def parallel_jobs(hydra_cfg: DictConfig) -> int:
    """How many jobs the launcher runs at once on this machine (joblib's n_jobs; 1 for the others)."""
    n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1)
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs or 1)


def failure(err: BaseException, cfg: DictConfig) -> tuple[str, str] | None:
    """(status, one-line reason) for a failure users can act on; None for an unexpected error (a bug)."""
    if isinstance(err, Terminated):
        return "interrupted", str(err)
    if isinstance(err, SystemExit | KeyboardInterrupt):  # Lightning's own SIGTERM and Ctrl-C exits
        return "interrupted", f"interrupted ({type(err).__name__}); run the same command again to continue"
    if (message := config_error(err, cfg)) is not None:
        return "failed", f"Invalid config: {message}"
    while err is not None and not isinstance(err, KNOWN_FAILURES):
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # a writer we do not own (TensorBoard's)
            err = disk_full(Path(err.filename or "."))
            break
        err = err.__cause__ or err.__context__
    return None if err is None else ("failed", first_line(err))


def is_peer_failure(err: BaseException) -> bool:
    """Did this DDP process fail because another one did? Then a collective of its running process group broke
    under it: torch.distributed raised (NCCL's DistError, or gloo's RuntimeError "Connection closed by peer")."""
    if not in_process_group():
        return False
    while err is not None:
        frames = traceback.extract_tb(err.__traceback__)
        if isinstance(err, torch.distributed.DistError) or (frames and "/torch/distributed/" in frames[-1].filename):
            return True
        err = err.__cause__ or err.__context__
    return False


def recorded_failure(output_dir: Path, since: float) -> str | None:
    """The reason in metrics.json if a process of this job recorded a failure there at or after ``since``."""
    path = output_dir / "metrics.json"
    metrics = read_json(path)
    if metrics is None or metrics.get("status") == "ok" or path.stat().st_mtime < since:
        return None
    return metrics.get("reason")


def end_process_group() -> None:
    """Destroy this process's DDP process group, on every way out: left to interpreter exit, gloo's threads can
    abort the process (pytorch#190489)."""
    if in_process_group():
        torch.distributed.destroy_process_group()


def stop(err: BaseException, cfg: DictConfig, output_dir: Path, started: float, hydra_cfg: DictConfig) -> None:
    """Record a job's failure once and end it in one line. The process whose own fault it is records it: rank 0,
    or another rank (its reason prefixed "rank N: ") unless a process of this job already recorded one; a
    process stopped by another's failure records nothing and repeats that one's reason."""
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if isinstance(err, SweepRefused):  # every job of the sweep would be refused alike
        raise SystemExit(f"error: {err}") from None
    if isinstance(err, Refused):  # before any work: nothing to record, the directory keeps what it holds
        log.error("Job refused: %s", err)
        if multirun:
            return
        raise SystemExit(f"error: {err}") from None
    if is_peer_failure(err):
        reason = recorded_failure(output_dir, started) or f"another DDP process failed ({first_line(err)})"
        log.error("Job stopped: %s", reason)
        raise SystemExit(f"error: {reason}") from None
    known = failure(err, cfg)
    status, reason = known or ("failed", f"{type(err).__name__}: {err}")
    rank = rank_zero_only.rank
    if rank > 0:
        reason = f"rank {rank}: {reason}"
    if rank == 0 or recorded_failure(output_dir, started) is None:
        record_failure(output_dir, cfg, hydra_cfg, status, reason)
    log.error("Job %s: %s", status, reason, exc_info=known is None)
    if status == "interrupted" and multirun and rank == 0:  # the remaining jobs will not run: summarise them
        summarize(Path(hydra_cfg.sweep.dir))
    if multirun and status != "interrupted":
        return
    if known is None:
        raise err
    raise SystemExit(reason if reason.startswith("Invalid config") else f"error: {reason}") from None


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns test/loss so Hydra sweepers can optimise it (None when the job failed)."""
    started = time.time()
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    log.info("Output directory: %s", output_dir)
    log.debug("Config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        with job_lock(output_dir):  # refuses a second run in the same directory, before touching anything
            try:
                with raise_on_sigterm():
                    return train(cfg, output_dir, hydra_cfg)["test/loss"]
            except BaseException as err:
                stop(err, cfg, output_dir, started, hydra_cfg)
                return None
            finally:
                end_process_group()
    except RunError as err:  # the lock is held by another run
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
