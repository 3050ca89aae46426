"""`python -m betavae.train`: fit one β-VAE per Hydra job, test its best checkpoint, write metrics.json."""

from __future__ import annotations

import json
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

from betavae.config import config_error, validate
from betavae.module import BetaVAEModule

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a config group given as a name → config mapping."""
    if not group:
        return []
    return [instantiate(node) for node in group.values() if node is not None and "_target_" in node]


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The hyperparameters a β sweep varies, flat, for TensorBoard's HPARAMS tab."""
    return {
        "beta": cfg.beta,
        "seed": cfg.seed,
        "lr": cfg.lr,
        "batch_size": cfg.data.batch_size,
        "latent_dim": cfg.model.latent_dim,
        "hidden_dims": str(list(cfg.model.hidden_dims)),
        "max_epochs": cfg.trainer.max_epochs,
    }


def train(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Fit, test the best checkpoint, log hparams with test metrics, and return what metrics.json holds."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    module = BetaVAEModule(instantiate(cfg.model), beta=cfg.beta, lr=cfg.lr)
    checkpoint = instantiate(cfg.checkpoint)
    callbacks = [checkpoint, instantiate(cfg.progress_bar), *instantiate_group(cfg.callbacks)]
    if cfg.get("fid") and "_target_" in cfg.fid:  # fid=none leaves nothing, or only experiment settings
        callbacks.append(instantiate(cfg.fid))
    trainer: pl.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_group(cfg.logger))
    start = time.perf_counter()
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    best = checkpoint.best_model_path or checkpoint.last_model_path or None
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
        (output_dir / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Hydra entry point; returns test/loss so Hydra sweepers can optimise it."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    log.info("Output directory: %s", output_dir)
    log.debug("Config:\n%s", OmegaConf.to_yaml(cfg))
    try:
        validate(cfg)
        return train(cfg, output_dir)["test/loss"]
    except Exception as err:
        if (cause := config_error(err)) is None:
            raise
        raise SystemExit(f"Invalid config: {cause}") from None


if __name__ == "__main__":
    main()
