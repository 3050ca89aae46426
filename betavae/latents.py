"""Posterior statistics of a trained encoder: batched encoding, per-dimension KL, active units, linear probe."""

from __future__ import annotations

import torch

from betavae.loss import gaussian_kl
from betavae.model import MLPVAE, Posterior

ACTIVE_THRESHOLD = 0.01  # Burda et al. (2016): a unit is active if Var_x(E_q[z_d]) > 0.01


@torch.no_grad()
def encode_all(model: MLPVAE, images: torch.Tensor, batch_size: int = 2000) -> Posterior:
    """The posterior of every image (flattened, in [0, 1]), encoded in batches on the model's device so memory
    stays bounded wherever the images are."""
    parts = [model.encode(batch.to(model.device)) for batch in images.split(batch_size)]
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
    train_x: torch.Tensor, train_labels: torch.Tensor, test_x: torch.Tensor, test_labels: torch.Tensor
) -> float:
    """Test accuracy (%) of a logistic regression (on standardised features) fitted on training codes: how
    linearly the classes separate in them. With no features, the majority class's share of the test set."""
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if train_x.shape[1] == 0:
        probe, train_x, test_x = DummyClassifier(), train_x.new_zeros(len(train_x), 1), test_x.new_zeros(len(test_x), 1)
    probe.fit(train_x.cpu().numpy(), train_labels.cpu().numpy())
    return 100.0 * float(probe.score(test_x.cpu().numpy(), test_labels.cpu().numpy()))


def posterior_sample(posterior: Posterior, seed: int = 0) -> torch.Tensor:
    """One seeded draw z ~ q(z|x) per image (drawn on the CPU, so a seed gives the same z on every device)."""
    eps = torch.randn(posterior.mu.shape, generator=torch.Generator().manual_seed(seed)).to(posterior.mu.device)
    return MLPVAE.reparameterize(posterior.mu, posterior.logvar, eps)


def probe_metrics(
    train: Posterior, train_labels: torch.Tensor, test: Posterior, test_labels: torch.Tensor, seed: int = 0
) -> dict[str, float]:
    """Linear probes that cannot read collapsed dimensions: `test/probe_accuracy` on posterior samples z ~ q
    (a collapsed dimension is prior noise there), `test/probe_accuracy_active` on the posterior means of the
    dimensions active on the training images only. Standardising the means of collapsed dimensions (variance
    ~5e-4) would blow their residual class signal up to unit scale and let the probe read it."""
    active = active_mask(train)
    return {
        "test/probe_accuracy": linear_probe_accuracy(
            posterior_sample(train, seed), train_labels, posterior_sample(test, seed + 1), test_labels
        ),
        "test/probe_accuracy_active": linear_probe_accuracy(
            train.mu[:, active], train_labels, test.mu[:, active], test_labels
        ),
    }


def latent_metrics(
    model: MLPVAE,
    test: tuple[torch.Tensor, torch.Tensor],
    train: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, float]:
    """`test/active_units` of the test (images, labels), and the probes (`probe_metrics`) when the training
    split to fit them on is given."""
    test_posterior = encode_all(model, test[0])
    metrics = {"test/active_units": float(active_units(test_posterior))}
    if train is not None:
        metrics |= probe_metrics(encode_all(model, train[0]), train[1], test_posterior, test[1])
    return metrics
