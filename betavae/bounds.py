"""Bounds on log p(x): the ELBO and the importance-weighted estimate (Burda et al. 2016) with its diagnostics,
under the model's own likelihood, batched so memory stays bounded."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from betavae.loss import gaussian_kl
from betavae.model import VAE

LOG_2PI = math.log(2 * math.pi)


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
