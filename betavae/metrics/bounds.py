"""Bounds on log p(x): the ELBO and the importance-weighted estimate (Burda et al. 2016) with its diagnostics,
under the model's own likelihood, batched so memory stays bounded; the `bounds` metric family (evaluate's)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from omegaconf import DictConfig
from tqdm import tqdm

from betavae.data.contract import ImageData
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import VAE
from betavae.model.objectives import gaussian_kl

log = logging.getLogger(__name__)
LOG_2PI = math.log(2 * math.pi)
LOW_ESS = 0.01  # below this mean ESS / K the IW estimate is dominated by a few samples: warn


class ElboTerms(NamedTuple):
    """Per-image reconstruction term −E_q[log p(x|z)] and analytic KL(q ‖ p), in nats; ELBO = −(recon + kl)."""

    recon: torch.Tensor
    kl: torch.Tensor


class IWEstimate(NamedTuple):
    """Per image: log (1/K) Σ_k w_k, and the effective sample size (Σ w)² / Σ w² of its K weights (1 … K)."""

    log_px: torch.Tensor
    ess: torch.Tensor


def posterior_draws(mu: torch.Tensor, logvar: torch.Tensor, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε, z): ``samples`` draws z = μ + σ·ε ~ q(z|x) per image, [samples, B, D], and the unit noise behind them."""
    eps = torch.randn(samples, *mu.shape, dtype=mu.dtype, device=mu.device)
    return eps, VAE.reparameterize(mu, logvar, eps)


def log_weights(model: VAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, samples: int) -> torch.Tensor:
    """log p(x|z) + log p(z) − log q(z|x) for ``samples`` draws z ~ q(z|x) per image, shape [samples, B]."""
    eps, z = posterior_draws(mu, logvar, samples)
    log_px_z = -model.nll(model.decode(z), x)
    log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
    log_qz_x = -0.5 * (eps.square() + logvar + LOG_2PI).sum(-1)
    return log_px_z + log_pz - log_qz_x


@torch.inference_mode()
def iw_estimate(
    model: VAE,
    images: torch.Tensor,
    samples: int = 1000,
    batch_images: int = 100,
    batch_samples: int = 100,
    on_batch: Callable[[torch.Tensor], None] | None = None,
) -> IWEstimate:
    """Per-image log (1/K) Σ_k w_k with K = ``samples``, a lower bound on log p(x) that tightens as K grows, and
    each image's effective sample size. At most ``batch_images`` × ``batch_samples`` decoder outputs are held at
    once; ``on_batch`` gets each batch's estimates (a progress bar)."""
    log_px, ess = [], []
    for x in images.split(batch_images):
        x = x.to(model.device)
        mu, logvar = model.encode(x)
        total = torch.full((len(x),), -math.inf, device=x.device)  # log Σ w, then log Σ w² (running)
        total_sq = total.clone()
        for start in range(0, samples, batch_samples):
            chunk = log_weights(model, x, mu, logvar, min(batch_samples, samples - start))
            total = torch.logaddexp(total, torch.logsumexp(chunk, dim=0))
            total_sq = torch.logaddexp(total_sq, torch.logsumexp(2 * chunk, dim=0))
        log_px.append(total - math.log(samples))
        ess.append((2 * total - total_sq).exp())
        if on_batch is not None:
            on_batch(log_px[-1])
    return IWEstimate(torch.cat(log_px), torch.cat(ess))


def iw_log_likelihood(model: VAE, images: torch.Tensor, samples: int = 1000, **batching: int) -> torch.Tensor:
    """Per-image importance-weighted estimate of log p(x) (see `iw_estimate`)."""
    return iw_estimate(model, images, samples, **batching).log_px


def standard_error(values: torch.Tensor) -> float:
    """Standard error of the mean of per-image estimates: their sample sd / √n. Each estimate carries its own
    Monte Carlo noise, so this covers both the choice of images and the samples drawn."""
    return float(values.double().std() / math.sqrt(len(values))) if len(values) > 1 else math.nan


@torch.inference_mode()
def elbo_terms(model: VAE, images: torch.Tensor, samples: int = 1, batch_images: int = 1000) -> ElboTerms:
    """Per-image ELBO terms, the reconstruction averaged over ``samples`` posterior draws per image."""
    recon, kl = [], []
    for x in images.split(batch_images):
        x = x.to(model.device)
        mu, logvar = model.encode(x)
        _, z = posterior_draws(mu, logvar, samples)
        recon.append(model.nll(model.decode(z), x).mean(0))
        kl.append(gaussian_kl(mu, logvar).sum(-1))
    return ElboTerms(torch.cat(recon), torch.cat(kl))


def elbo(model: VAE, images: torch.Tensor, samples: int = 1, batch_images: int = 1000) -> torch.Tensor:
    """Per-image ELBO, E_q[log p(x|z)] − KL(q ‖ p), with the KL analytic and the expectation over ``samples``."""
    terms = elbo_terms(model, images, samples, batch_images)
    return -(terms.recon + terms.kl)


class LikelihoodBounds(Scorer):
    """The `bounds` family, on the first ``limit`` observed test images (binarised with likelihood=binarized):
    −ELBO (reconstruction averaged over ``elbo_samples`` draws) and the importance-weighted NLL with
    ``iw_samples`` draws, each with its standard error, and the IW weights' mean effective sample size as a
    fraction of K, in nats per image under the model's likelihood; a progress bar shows the running estimate.
    evaluate checks the settings (`eval.*`) before any work."""

    def __init__(self, iw_samples: int = 1000, elbo_samples: int = 10, batch_images: int = 100,
                 batch_samples: int = 100, seed: int = 0) -> None:  # fmt: skip
        self.iw_samples, self.elbo_samples, self.seed = iw_samples, elbo_samples, seed
        self.batch_images, self.batch_samples = batch_images, batch_samples

    @classmethod
    def configured(cls, node: DictConfig | None) -> LikelihoodBounds:
        keys = ("iw_samples", "elbo_samples", "batch_images", "batch_samples", "seed")
        return cls(**{k: node[k] for k in keys if node is not None and k in node})

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        return Evaluation(self.scores(model, data.observed("test")[0][:limit].to(model.device)))

    def scores(self, model: VAE, images: torch.Tensor) -> dict[str, float]:
        """The bounds on ``images`` (flattened, in [0, 1])."""
        torch.manual_seed(self.seed)
        terms = elbo_terms(model, images, samples=self.elbo_samples)
        nll_elbo = terms.recon + terms.kl
        with tqdm(total=len(images), desc="IW NLL", unit="image", mininterval=1.0) as bar:
            running = []

            def show(log_px: torch.Tensor) -> None:
                running.append(-log_px)
                bar.update(len(log_px))
                bar.set_postfix(nll=f"{float(torch.cat(running).mean()):.2f}")

            iw = iw_estimate(model, images, self.iw_samples, self.batch_images, self.batch_samples, on_batch=show)
        ess = float((iw.ess / self.iw_samples).mean())
        if ess < LOW_ESS:
            log.warning(
                "IW estimate: mean effective sample size %.1f of K = %d (%.2f%%): a few weights dominate, so NLL IW "
                "may still be far above log p(x); raise eval.iw_samples to see it tighten",
                ess * self.iw_samples, self.iw_samples, 100 * ess,
            )  # fmt: skip
        return {
            "nll_iw": float(-iw.log_px.mean()),
            "nll_iw_se": standard_error(iw.log_px),
            "iw_ess": ess,
            "nll_elbo": float(nll_elbo.mean()),
            "nll_elbo_se": standard_error(nll_elbo),
            "iw_samples": self.iw_samples,
            "elbo_samples": self.elbo_samples,
            "iw_images": len(images),
        }
