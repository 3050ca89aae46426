"""The metrics' own behaviour on constructed cases: the linear probes, FID's sample draws and inputs, and the
importance-weighting diagnostics."""

import logging

import pytest
import torch
from omegaconf import OmegaConf

from betavae.metrics.bounds import LikelihoodBounds
from betavae.metrics.fid import ToInception
from betavae.metrics.latents import linear_probe_accuracy, probe_metrics
from betavae.model.networks import MLPVAE, Posterior


def collapsed_posterior(labels: torch.Tensor, seed: int) -> Posterior:
    """A posterior whose 20 dimensions have all collapsed onto the prior (σ = 1), their means keeping a class
    signal of the size a collapsed dimension keeps in practice (sd ≈ 0.02, variance ≈ 5e-4)."""
    g = torch.Generator().manual_seed(seed)
    centres = 0.02 * torch.randn(10, 20, generator=torch.Generator().manual_seed(99))
    mu = centres[labels] + 0.005 * torch.randn(len(labels), 20, generator=g)
    return Posterior(mu, torch.zeros_like(mu))


def test_probes_read_nothing_from_collapsed_dimensions():
    train_labels = torch.arange(5000) % 10
    test_labels = torch.arange(2000) % 10
    train, test = collapsed_posterior(train_labels, 1), collapsed_posterior(test_labels, 2)
    # Standardised posterior means of collapsed dimensions are nearly perfectly separable: the old probe's flaw.
    assert linear_probe_accuracy(train.mu, train_labels, test.mu, test_labels) > 90
    metrics = probe_metrics(train, train_labels, test, test_labels)
    assert metrics["probe_accuracy"] < 15  # z ~ q: the collapsed dimensions are prior noise, chance is 10%
    assert metrics["probe_accuracy_active"] == pytest.approx(10.0)  # no active dimension: majority class


def test_probe_on_active_dimensions_uses_only_those():
    labels = torch.arange(4000) % 10
    train, test = collapsed_posterior(labels, 3), collapsed_posterior(labels, 4)
    for posterior in (train, test):  # one active dimension carrying the class
        posterior.mu[:, 0] = labels.float() + 0.1 * torch.randn(len(labels))
    metrics = probe_metrics(train, labels, test, labels)
    assert metrics["probe_accuracy_active"] > 95
    assert 15 < metrics["probe_accuracy"] < metrics["probe_accuracy_active"]  # σ = 1 noise on it


def test_inception_input_is_rounded_not_truncated_and_gray_is_repeated_to_three_channels():
    seen = []
    wrapper = ToInception(lambda x: seen.append(x) or x.float().mean((1, 2, 3)))
    images = torch.tensor([[0.999, 0.5, 0.2 + 1e-6, 0.0]]).repeat(1, 196).view(1, 1, 28, 28)  # 0.999·255 → 255
    wrapper(images)
    assert seen[0].dtype == torch.uint8
    assert seen[0].shape == (1, 3, 28, 28)
    assert seen[0][0, 0, 0, :4].tolist() == [255, 128, 51, 0]  # byte() would give 254, 127, 51, 0


def test_inception_takes_colour_images_as_they_are():
    seen = []
    colour = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    ToInception(lambda x: seen.append(x) or x.float().mean((1, 2, 3)))(colour)
    assert seen[0].shape == (2, 3, 32, 32)
    assert torch.equal(seen[0], colour.mul(255).round().to(torch.uint8))


def _tiny_vae_with_wide_posterior() -> MLPVAE:
    """q(z|x) much wider than the true posterior (log σ² = 4) with a decoder that depends sharply on z, so a
    few importance weights dominate."""
    torch.manual_seed(0)
    model = MLPVAE(image_size=2, hidden_dims=[5], latent_dim=2).double()
    with torch.no_grad():
        model.encoder[-1].bias[2:] = 4.0
        model.decoder[-1].weight.mul_(30)
    return model


def test_low_effective_sample_size_is_reported_and_warned(caplog):
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    settings = OmegaConf.create({"seed": 0, "elbo_samples": 10, "iw_samples": 500, "batch_images": 4,
                                 "batch_samples": 100, "limit": None, "probe": True})  # fmt: skip  # eval's keys
    with caplog.at_level(logging.WARNING, logger="betavae.metrics.bounds"):
        result = LikelihoodBounds.configured(settings).scores(_tiny_vae_with_wide_posterior(), x)
    assert result["iw_ess"] < 0.01
    assert "mean effective sample size" in caplog.text
    assert result["nll_iw"] < result["nll_elbo"]
    assert result["iw_images"] == 8
