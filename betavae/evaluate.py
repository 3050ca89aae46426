"""`python -m betavae.evaluate run_dir=<job> | sweep_dir=<multirun>`: metrics and figures from best checkpoints.

For each run: −ELBO and an importance-weighted NLL estimate with their standard errors and the IW effective
sample size, active units, the KL's decomposition and the linear probes' scores, all on the first `eval.limit`
test images; FID (as in training); on data with known factors the disentanglement scores (and
disentanglement.npz); and the figures. Written to the run's evaluation.json and figures/ (and the metrics and
evaluation.json to the run's MLflow and W&B runs, if it has them). Checkpoints are read with
torch.load(weights_only=True).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from betavae import figures, loggers
from betavae.api import load_run
from betavae.bounds import elbo_terms, iw_estimate, standard_error
from betavae.cli import quote_path_arguments
from betavae.config import config_error, is_int, require
from betavae.disentanglement import DisentanglementScorer
from betavae.errors import ConfigError, RunError, first_line
from betavae.fid import FIDScorer
from betavae.files import write_json, write_npz, write_png
from betavae.jobs import job_lock
from betavae.latents import encode_all, latent_metrics
from betavae.model import VAE
from betavae.runs import job_dirs, run_config
from betavae.summarize import summarize

log = logging.getLogger(__name__)
PATH_KEYS = ("run_dir", "sweep_dir")


LOW_ESS = 0.01  # below this mean ESS / K the IW estimate is dominated by a few samples: warn


def likelihood_metrics(model: VAE, images: torch.Tensor, cfg: DictConfig) -> dict[str, float]:
    """On the same ``images``: −ELBO (reconstruction averaged over `elbo_samples` draws) and the importance-
    weighted NLL with `iw_samples` draws, each with its standard error, and the IW weights' mean effective
    sample size as a fraction of K, in nats per image under the model's likelihood."""
    torch.manual_seed(cfg.seed)
    terms = elbo_terms(model, images, samples=cfg.elbo_samples)
    nll_elbo = terms.recon + terms.kl
    with tqdm(total=len(images), desc="IW NLL", unit="image", mininterval=1.0) as bar:
        running = []

        def show(log_px: torch.Tensor) -> None:
            running.append(-log_px)
            bar.update(len(log_px))
            bar.set_postfix(nll=f"{float(torch.cat(running).mean()):.2f}")

        iw = iw_estimate(model, images, cfg.iw_samples, cfg.batch_images, cfg.batch_samples, on_batch=show)
    ess = float((iw.ess / cfg.iw_samples).mean())
    if ess < LOW_ESS:
        log.warning(
            "IW estimate: mean effective sample size %.1f of K = %d (%.2f%%): a few weights dominate, so NLL IW "
            "may still be far above log p(x); raise eval.iw_samples to see it tighten",
            ess * cfg.iw_samples, cfg.iw_samples, 100 * ess,
        )  # fmt: skip
    return {
        "test/nll_iw": float(-iw.log_px.mean()),
        "test/nll_iw_se": standard_error(iw.log_px),
        "test/iw_ess": ess,
        "test/nll_elbo": float(nll_elbo.mean()),
        "test/nll_elbo_se": standard_error(nll_elbo),
        "test/iw_samples": cfg.iw_samples,
        "test/elbo_samples": cfg.elbo_samples,
        "test/iw_images": len(images),
    }


Split = tuple[torch.Tensor, torch.Tensor]  # images (flattened, in [0, 1]) and labels


def draw_figures(model: VAE, data: Any, splits: dict[str, Split], label: str, settings: DictConfig, out: Path) -> None:
    """The training callbacks' end-of-fit figures of a trained model, as PNG files (and JSON) in ``out``."""
    (test, labels), (val, val_labels) = splits["test"], splits["val"]
    groups = data.group_of(labels)
    write_png(out, "reconstructions", figures.reconstructions(model, test, groups, **settings.reconstructions))
    write_png(out, "prior_samples", figures.prior_samples(model, **settings.prior_samples))
    write_png(out, "interpolation", figures.interpolation(model, test, groups, **settings.interpolation))
    traversal = dict(settings.latent_traversal)
    image = test[traversal.pop("image_index")]
    factors = (val_labels.cpu().numpy(), [f.name for f in data.factors]) if data.factors else None
    write_png(out, "latent_traversal", figures.latent_traversal(model, val, image, **traversal, factors=factors))
    image, stats = figures.frozen_sigma(model, label, **settings.frozen_sigma)
    write_png(out, "frozen_sigma", image)
    write_json(out / "frozen_sigma.json", stats)
    write_png(out, "kl_per_dim", figures.kl_per_dim_chart(encode_all(model, val), label))


def figure_settings(run_config: DictConfig, cfg: DictConfig) -> DictConfig:
    """What the run's figures show: the settings it was trained with (evaluate's `figures` for a run recorded
    before they were), with evaluate's own `figures.<name>.<key>=` overrides on top."""
    overrides = [o.removeprefix("figures.") for o in HydraConfig.get().overrides.task if o.startswith("figures.")]
    return OmegaConf.merge(run_config.get("figures") or cfg.figures, OmegaConf.from_dotlist(overrides))


def evaluate_run(run_dir: Path, cfg: DictConfig, scorers: Scorers) -> dict[str, Any]:
    """Evaluate one run's best checkpoint; write and return evaluation.json. A score with no meaning on the
    run's data (FID, the probe off Fashion-MNIST) is left out, with one line in the log."""
    loggers.check_stores(run_dir, cfg.tracking_unreachable)  # within seconds, before any work
    device = torch.device(cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    run = load_run(run_dir, device)
    module, model, data = run.module, run.model, instantiate(run.config.data)
    disentangle = scorers.disentanglement is not None and scorers.disentanglement.applies(data)
    probe = cfg.eval.probe and data.has_classes
    if cfg.eval.probe and not probe:
        log.info("%s: no linear probe: data=%s has no classes", run_dir, data.name)
    names = ("train", "val", "test") if probe else ("val", "test")  # the training split feeds the probe only
    splits = {name: tuple(t.to(device) for t in data.images(name)) for name in names}
    test = splits["test"]
    result: dict[str, Any] = {"run_dir": str(run_dir), "checkpoint": str(run.checkpoint), "beta": module.beta}
    observed = data.observed("test")[0].to(device)  # binarised with likelihood=binarized
    result |= likelihood_metrics(model, observed[: cfg.eval.limit], cfg.eval)
    limited = (test[0][: cfg.eval.limit], test[1][: cfg.eval.limit])  # the decomposition sums to nll_elbo's KL
    result |= latent_metrics(model, limited, splits["train"] if probe else None)
    if scorers.fid is not None and (reason := scorers.fid.unfit(data)):
        log.info("%s: no FID: %s", run_dir, reason)
    elif scorers.fid is not None:
        result |= scorers.fid.scores(model, test[0])
    out = Path(run_dir) / "figures"
    if disentangle:
        scores = scorers.disentanglement.scores(model, data)
        result |= {f"test/{name}": value for name, value in scores.metrics.items()}
        result["disentanglement"] = scorers.disentanglement.settings()
        write_npz(Path(run_dir) / "disentanglement.npz", scores.arrays)
        chart = figures.factor_information_chart(scores.normalized_mi, scores.factor_names, module.objective.label)
        write_png(out, "factor_information", chart)
    if cfg.eval.figures:
        draw_figures(model, data, splits, module.objective.label, figure_settings(run.config, cfg), out)
    path = write_json(Path(run_dir) / "evaluation.json", result)
    loggers.attach(run_dir, path, {k: v for k, v in result.items() if k.startswith("test/")}, cfg.tracking_unreachable)
    log.info("%s: %s", run_dir, {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    return result


class Scorers(NamedTuple):
    """The scorers evaluate builds once, before any run: FID's and the disentanglement scores' (None: off)."""

    fid: FIDScorer | None
    disentanglement: DisentanglementScorer | None


def check_eval(cfg: DictConfig) -> None:
    """Refuse, before any work, sample counts and limits that would give no estimate or a wrong one."""
    for key in ("iw_samples", "elbo_samples", "batch_images", "batch_samples"):
        value = cfg.eval[key]
        require(is_int(value, 1), f"eval.{key}", value, "must be an integer >= 1")
    limit = cfg.eval.limit
    require(limit is None or is_int(limit, 1), "eval.limit", limit, "must be null or >= 1")
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


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    """Evaluate each run; a run that cannot be evaluated is reported and the others go on."""
    try:
        check_eval(cfg)
        runs = runs_to_evaluate(cfg)
        scorers = Scorers(
            *(instantiate(cfg[key]) if key in cfg else None for key in Scorers._fields)
        )  # before any work
    except Exception as err:
        if not isinstance(err, RunError) and (err := config_error(err, cfg)) is None:
            raise
        raise SystemExit(f"error: {err}") from None
    failed = []
    for run in runs:
        try:
            run_config(run)  # a run directory, before the lock creates anything in it
            with job_lock(run):  # not while training (or another evaluate) writes into the run
                evaluate_run(run, cfg, scorers)
        except (RunError, ConfigError) as err:
            log.error("%s: %s", run, err)
            failed.append(f"{run} ({first_line(err)})")
    if cfg.sweep_dir:
        log.info("Sweep summary:\n%s", summarize(Path(cfg.sweep_dir))[0])
    if failed:
        raise SystemExit(f"error: {len(failed)} of {len(runs)} runs could not be evaluated: {'; '.join(failed)}")


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
