import math

import torch

from betavae.loss import bernoulli_nll, beta_vae_loss, gaussian_kl


def _hand_loss(logits, x, mu, logvar, beta):
    """The objective written out element by element, in plain Python floats."""
    recon = kl = 0.0
    for i in range(len(x)):
        for z, t in zip(logits[i].tolist(), x[i].tolist(), strict=True):
            p = 1 / (1 + math.exp(-z))
            recon -= t * math.log(p) + (1 - t) * math.log(1 - p)
        for m, lv in zip(mu[i].tolist(), logvar[i].tolist(), strict=True):
            kl += 0.5 * (m * m + math.exp(lv) - 1 - lv)
    n = len(x)
    return (recon + beta * kl) / n, recon / n, kl / n


def test_loss_matches_hand_computation():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 6, generator=g, dtype=torch.float64)
    x = torch.rand(3, 6, generator=g, dtype=torch.float64)
    mu = torch.randn(3, 2, generator=g, dtype=torch.float64)
    logvar = torch.randn(3, 2, generator=g, dtype=torch.float64)
    terms = beta_vae_loss(logits, x, mu, logvar, beta=0.5)
    expected = _hand_loss(logits, x, mu, logvar, 0.5)
    for got, want in zip(terms, expected, strict=True):
        assert math.isclose(got.item(), want, rel_tol=1e-12)


def test_kl_is_zero_only_at_the_prior():
    zeros = torch.zeros(2, 4)
    assert torch.equal(gaussian_kl(zeros, zeros), zeros)
    assert (gaussian_kl(torch.full((2, 4), 0.3), zeros) > 0).all()
    assert (gaussian_kl(zeros, torch.full((2, 4), -1.0)) > 0).all()


def test_beta_only_scales_kl():
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(4, 8, generator=g), torch.rand(4, 8, generator=g), torch.randn(4, 3, generator=g)]
    args.append(torch.randn(4, 3, generator=g))
    low, high = beta_vae_loss(*args, beta=0.1), beta_vae_loss(*args, beta=1.0)
    assert torch.equal(low.recon, high.recon) and torch.equal(low.kl, high.kl)
    assert torch.isclose(high.loss - low.loss, 0.9 * low.kl)


def test_bernoulli_nll_is_the_loss_reconstruction_per_pixel_and_per_sample():
    g = torch.Generator().manual_seed(2)
    logits, x = torch.randn(2, 4, 5, generator=g), torch.rand(4, 5, generator=g)  # 2 samples of 4 images
    per_pixel = bernoulli_nll(logits, x)
    assert per_pixel.shape == (2, 4, 5)
    zeros = torch.zeros(4, 2)
    assert torch.isclose(per_pixel[1].sum() / 4, beta_vae_loss(logits[1], x, zeros, zeros, 1.0).recon)
