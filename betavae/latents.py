"""Posterior statistics of a trained encoder: batched encoding, per-dimension KL, active units."""

from __future__ import annotations

from typing import NamedTuple

import torch

from betavae.loss import gaussian_kl
from betavae.model import MLPVAE

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Var_x(E_q[z_d]) > 0.01


class Posterior(NamedTuple):
    """μ and log σ² of q(z|x) for a set of images, each [N, D]."""

    mu: torch.Tensor
    logvar: torch.Tensor


@torch.no_grad()
def encode(model: MLPVAE, images: torch.Tensor, batch_size: int = 2000) -> Posterior:
    """Encode flattened images in [0, 1] in batches, so memory stays bounded."""
    parts = [model.encode(batch) for batch in images.split(batch_size)]
    return Posterior(torch.cat([mu for mu, _ in parts]), torch.cat([lv for _, lv in parts]))


def kl_per_dim(posterior: Posterior) -> torch.Tensor:
    """Average KL(q(z_d|x) ‖ N(0, 1)) over the images, per latent dimension, shape [D]."""
    return gaussian_kl(posterior.mu, posterior.logvar).mean(0)


def active_mask(posterior: Posterior, threshold: float = ACTIVE_THRESHOLD) -> torch.Tensor:
    """Per dimension: does its posterior mean vary across the data by more than ``threshold``? Shape [D]."""
    return posterior.mu.var(0) > threshold


def active_units(posterior: Posterior, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of active dimensions (see active_mask)."""
    return int(active_mask(posterior, threshold).sum())


def linear_probe_accuracy(
    train_mu: torch.Tensor, train_labels: torch.Tensor, test_mu: torch.Tensor, test_labels: torch.Tensor
) -> float:
    """Test accuracy (%) of a logistic regression fitted on training posterior means: how linearly the classes
    separate in latent space."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    probe.fit(train_mu.cpu().numpy(), train_labels.cpu().numpy())
    return 100.0 * float(probe.score(test_mu.cpu().numpy(), test_labels.cpu().numpy()))
