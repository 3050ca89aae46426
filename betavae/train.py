"""`python -m betavae.train`: fit one β-VAE per Hydra job, test its best checkpoint, write metrics.json."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from betavae.cli import quote_path_arguments
from betavae.config import config_error, require
from betavae.files import write_json

log = logging.getLogger(__name__)
PATH_KEYS = ("ckpt_path", "hydra.run.dir", "hydra.sweep.dir", "data.root", "fid.cache_dir", "fid.inception_weights")


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a name → config mapping (the callbacks and logger groups)."""
    return [instantiate(node) for node in (group or {}).values()]


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a β sweep varies, flat, for TensorBoard's HPARAMS tab."""
    return {
        "beta": cfg.beta,
        "seed": cfg.seed,
        "lr": cfg.lr,
        "batch_size": cfg.data.batch_size,
        "latent_dim": cfg.model.net.latent_dim,
        "hidden_dims": str(list(cfg.model.net.hidden_dims)),
        "max_epochs": cfg.trainer.max_epochs,
    }


def train(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Fit, test the best checkpoint, log hparams with test metrics, and return what metrics.json holds."""
    ckpt = cfg.ckpt_path
    require(
        ckpt is None or Path(ckpt).expanduser().is_file(), "ckpt_path", ckpt, "must be null or an existing checkpoint"
    )
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = instantiate(cfg.model)
    callbacks = instantiate_all(cfg.callbacks)
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_all(cfg.logger))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt)
    checkpoint = trainer.checkpoint_callback  # the ModelCheckpoint of the callbacks group
    best = (checkpoint.best_model_path or checkpoint.last_model_path or None) if checkpoint else None
    trainer.test(module, datamodule=datamodule, ckpt_path=best)
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("test/")}
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams(cfg), metrics)
            logger.finalize("success")  # flush now: the writer reopened after test() is never closed otherwise
    result = {
        **metrics,
        "beta": cfg.beta,
        "seed": cfg.seed,
        "epochs": trainer.current_epoch,
        "wall_time_s": round(time.perf_counter() - start, 2),
        "best_checkpoint": os.path.relpath(best, output_dir) if best else None,
    }
    if trainer.is_global_zero:
        write_json(output_dir / "metrics.json", result)
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns test/loss so Hydra sweepers can optimise it."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("Output directory: %s", output_dir)
    log.debug("Config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        return train(cfg, output_dir)["test/loss"]
    except Exception as err:
        if (message := config_error(err, cfg)) is None:
            raise
        raise SystemExit(f"Invalid config: {message}") from None


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
