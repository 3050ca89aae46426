"""The β-VAE objective in nats per image: Bernoulli NLL + β·KL(q(z|x) ‖ N(0, I))."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class LossTerms(NamedTuple):
    """Batch means, in nats per image, of the objective and its two parts."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """−log p(x|z) per pixel for decoder logits [..., B, P] of images x [B, P] (binary cross-entropy)."""
    return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL(N(μ, σ²) ‖ N(0, 1)) per image and latent dimension, shape [B, D]."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


def beta_vae_loss(
    logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float
) -> LossTerms:
    """recon = Σ_pixels BCE(logits, x); kl = Σ_dims KL; loss = recon + β·kl; each averaged over the batch."""
    batch = x.shape[0]
    recon = bernoulli_nll(logits, x).sum() / batch
    kl = gaussian_kl(mu, logvar).sum() / batch
    return LossTerms(recon + beta * kl, recon, kl)
