"""Posterior statistics of a trained encoder: batched encoding, per-dimension KL, active units, linear probe."""

from __future__ import annotations

import torch

from betavae.loss import gaussian_kl
from betavae.model import MLPVAE, Posterior

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Var_x(E_q[z_d]) > 0.01


@torch.no_grad()
def encode_all(model: MLPVAE, images: torch.Tensor, batch_size: int = 2000) -> Posterior:
    """The posterior of every image (flattened, in [0, 1]), encoded in batches so memory stays bounded."""
    parts = [model.encode(batch) for batch in images.split(batch_size)]
    return Posterior(torch.cat([p.mu for p in parts]), torch.cat([p.logvar for p in parts]))


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


def latent_metrics(
    model: MLPVAE,
    test: tuple[torch.Tensor, torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """`test/active_units` of the test (images, labels), and `test/probe_accuracy` when the training split to
    fit the probe on is given."""
    test_posterior = encode_all(model, test[0])
    metrics = {"test/active_units": float(active_units(test_posterior))}
    if train is not None:
        train_mu = encode_all(model, train[0]).mu
        metrics["test/probe_accuracy"] = linear_probe_accuracy(train_mu, train[1], test_posterior.mu, test[1])
    return metrics
