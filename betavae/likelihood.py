"""Importance-weighted estimate of log p(x) (Burda et al., 2016), batched so memory stays bounded."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from betavae.loss import bernoulli_nll, gaussian_kl
from betavae.model import MLPVAE

LOG_2PI = math.log(2 * math.pi)


class ElboTerms(NamedTuple):
    """Per-image reconstruction term −E_q[log p(x|z)] and analytic KL(q ‖ p), in nats; ELBO = −(recon + kl)."""

    recon: torch.Tensor
    kl: torch.Tensor


def log_bernoulli(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) summed over pixels, for decoder logits [..., B, 784] of images x [B, 784]."""
    return -bernoulli_nll(logits, x).sum(-1)


def log_weights(model: MLPVAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, samples: int) -> torch.Tensor:
    """log p(x|z) + log p(z) − log q(z|x) for ``samples`` draws z ~ q(z|x) per image, shape [samples, B]."""
    eps = torch.randn(samples, *mu.shape, device=mu.device)
    z = model.reparameterize(mu, logvar, eps)
    log_px_z = log_bernoulli(model.decode(z), x)
    log_pz = -0.5 * (z.square() + LOG_2PI).sum(-1)
    log_qz_x = -0.5 * (eps.square() + logvar + LOG_2PI).sum(-1)
    return log_px_z + log_pz - log_qz_x


@torch.inference_mode()
def iw_log_likelihood(
    model: MLPVAE, images: torch.Tensor, samples: int = 1000, batch_images: int = 100, batch_samples: int = 100
) -> torch.Tensor:
    """Per-image estimate log (1/K) Σ_k w_k with K = ``samples``; a lower bound on log p(x) that tightens as K
    grows. At most ``batch_images`` × ``batch_samples`` decoder outputs are held at once."""
    estimates = []
    for x in images.split(batch_images):
        mu, logvar = model.encode(x)
        total = torch.full((len(x),), -math.inf, device=x.device)
        for start in range(0, samples, batch_samples):
            chunk = log_weights(model, x, mu, logvar, min(batch_samples, samples - start))
            total = torch.logaddexp(total, torch.logsumexp(chunk, dim=0))
        estimates.append(total - math.log(samples))
    return torch.cat(estimates)


@torch.inference_mode()
def elbo_terms(model: MLPVAE, images: torch.Tensor, samples: int = 1, batch_images: int = 1000) -> ElboTerms:
    """Per-image ELBO terms, the reconstruction averaged over ``samples`` posterior draws per image."""
    recon, kl = [], []
    for x in images.split(batch_images):
        mu, logvar = model.encode(x)
        z = model.reparameterize(mu, logvar, torch.randn(samples, *mu.shape, device=mu.device))
        recon.append(-log_bernoulli(model.decode(z), x).mean(0))
        kl.append(gaussian_kl(mu, logvar).sum(-1))
    return ElboTerms(torch.cat(recon), torch.cat(kl))


def elbo(model: MLPVAE, images: torch.Tensor, samples: int = 1, batch_images: int = 1000) -> torch.Tensor:
    """Per-image ELBO, E_q[log p(x|z)] − KL(q ‖ p), with the KL analytic and the expectation over ``samples``."""
    terms = elbo_terms(model, images, samples, batch_images)
    return -(terms.recon + terms.kl)
