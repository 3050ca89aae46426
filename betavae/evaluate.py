"""`python -m betavae.evaluate run_dir=<job> | sweep_dir=<multirun>`: metrics and figures from best checkpoints.

For each run: the ELBO terms, an importance-weighted log-likelihood estimate, active units, a linear probe,
FID, and the figures of the callbacks, written to the run's evaluation.json and figures/. Checkpoints are
loaded with torch.load(weights_only=True), so nothing pickled in them runs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from betavae.config import ConfigError, config_error
from betavae.figures import write_png
from betavae.latents import encode
from betavae.likelihood import elbo_terms, iw_log_likelihood
from betavae.runs import RunError, job_dirs, load_model
from betavae.summarize import summarize
from callbacks.fid import FID
from callbacks.latent_stats import kl_bar_chart, test_latent_metrics
from callbacks.output import device_of, split_images

log = logging.getLogger(__name__)
FIGURES = ("reconstructions", "prior_samples", "interpolation", "latent_traversal")


def likelihood_metrics(model: torch.nn.Module, images: torch.Tensor, cfg: DictConfig) -> dict[str, float]:
    """ELBO terms and the importance-weighted NLL on ``images``, in nats per image."""
    torch.manual_seed(cfg.seed)
    terms = elbo_terms(model, images, samples=cfg.elbo_samples)
    nll = -iw_log_likelihood(model, images, cfg.iw_samples, cfg.batch_images, cfg.batch_samples)
    return {
        "test/elbo": float(-(terms.recon + terms.kl).mean()),
        "test/recon": float(terms.recon.mean()),
        "test/kl": float(terms.kl.mean()),
        "test/nll_iw": float(nll.mean()),
        "iw_samples": cfg.iw_samples,
        "images": len(images),
    }


def draw_figures(model: torch.nn.Module, datamodule: pl.LightningDataModule, beta: float, cfg: DictConfig,
                 out: Path) -> None:  # fmt: skip
    """The callbacks' figures of a trained model, as PNG files in ``out``."""
    for name in FIGURES:
        write_png(out, name, instantiate(cfg.callbacks[name]).figure(model, datamodule))
    image, stats = instantiate(cfg.callbacks.frozen_sigma).study(model, beta)
    write_png(out, "frozen_sigma", image)
    (out / "frozen_sigma.json").write_text(json.dumps(stats, indent=2) + "\n")
    val, _ = split_images(datamodule, "val", device_of(model))
    write_png(out, "kl_per_dim", kl_bar_chart(encode(model, val), beta))


def evaluate_run(run_dir: Path, cfg: DictConfig, fid: FID | None) -> dict[str, Any]:
    """Evaluate one run's best checkpoint; write and return evaluation.json."""
    model, run_cfg, checkpoint = load_model(run_dir)
    device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device)
    datamodule = instantiate(run_cfg.data)
    datamodule.setup("test")
    test = split_images(datamodule, "test", device)[0][: cfg.eval.limit]
    result: dict[str, Any] = {"run_dir": str(run_dir), "checkpoint": str(checkpoint), "beta": float(run_cfg.beta)}
    result |= likelihood_metrics(model, test, cfg.eval)
    result |= test_latent_metrics(model, datamodule, probe=cfg.eval.probe)
    if fid is not None:
        result |= fid.evaluate(model, datamodule)
    if cfg.eval.figures:
        draw_figures(model, datamodule, float(run_cfg.beta), cfg, Path(run_dir) / "figures")
    (Path(run_dir) / "evaluation.json").write_text(json.dumps(result, indent=2) + "\n")
    log.info("%s: %s", run_dir, {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    return result


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


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Evaluate each run; a run that cannot be evaluated is reported and the others go on."""
    try:
        runs = runs_to_evaluate(cfg)
        fid = instantiate(cfg.fid) if cfg.get("fid") and "_target_" in cfg.fid else None  # fails before any work
    except Exception as err:
        if not isinstance(err, RunError) and (err := config_error(err)) is None:
            raise
        raise SystemExit(f"error: {err}") from None
    failed = []
    for run in runs:
        try:
            evaluate_run(run, cfg, fid)
        except RunError as err:
            log.error("%s", err)
            failed.append(run)
    if cfg.sweep_dir:
        log.info("Sweep summary:\n%s", summarize(Path(cfg.sweep_dir)))
    if failed:
        names = ", ".join(map(str, failed))
        raise SystemExit(f"error: {len(failed)} of {len(runs)} runs could not be evaluated: {names}")


if __name__ == "__main__":
    main()
