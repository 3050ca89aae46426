"""The objectives, the pixel likelihoods and the likelihood estimators against independent hand calculations
(float64, element by element) on tiny batches."""

import math

import pytest
import torch

from betavae.base.errors import ConfigError
from betavae.metrics.bounds import iw_estimate, standard_error
from betavae.model.likelihoods import Bernoulli, ContinuousBernoulli, entropy_floor
from betavae.model.networks import MLPVAE
from betavae.model.objectives import BetaObjective, CapacityObjective, Progress, gaussian_kl, objective_from


def _sigmoid(z):
    return 1 / (1 + math.exp(-z))


def _hand_bce(logits, x):
    """Σ_pixels −[x log p + (1 − x) log(1 − p)] per image, in Python floats."""
    return [sum(-(t * math.log(_sigmoid(z)) + (1 - t) * math.log(1 - _sigmoid(z))) for z, t in zip(zr, xr, strict=True))
            for zr, xr in zip(logits.tolist(), x.tolist(), strict=True)]  # fmt: skip


def _hand_cb_log_norm(lam):
    """log C(λ) of the continuous Bernoulli, C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ) (2 at λ = ½)."""
    return math.log(2.0) if abs(lam - 0.5) < 1e-9 else math.log(2 * math.atanh(1 - 2 * lam) / (1 - 2 * lam))


def _tiny(seed=0, batch=3, pixels=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, pixels, generator=g, dtype=torch.float64), torch.rand(batch, pixels, generator=g,
                                                                                    dtype=torch.float64)  # fmt: skip


def test_bernoulli_nll_matches_hand_cross_entropy():
    logits, x = _tiny()
    assert Bernoulli().nll(logits, x).tolist() == pytest.approx(_hand_bce(logits, x), rel=1e-12)


def test_continuous_bernoulli_nll_matches_hand_density():
    logits, x = _tiny(1)
    hand = [b - sum(_hand_cb_log_norm(_sigmoid(z)) for z in zr) for b, zr in zip(_hand_bce(logits, x), logits.tolist(),
                                                                                   strict=True)]  # fmt: skip
    assert ContinuousBernoulli().nll(logits, x).tolist() == pytest.approx(hand, rel=1e-9)


def test_continuous_bernoulli_mean_matches_hand_formula_not_sigmoid():
    logits = torch.tensor([[-3.0, -0.5, 0.0, 0.5, 3.0]], dtype=torch.float64)
    hand = [lam / (2 * lam - 1) + 1 / (2 * math.atanh(1 - 2 * lam)) if abs(lam - 0.5) > 1e-9 else 0.5
            for lam in map(_sigmoid, logits[0].tolist())]  # fmt: skip
    mean = ContinuousBernoulli().mean(logits)[0]
    assert mean.tolist() == pytest.approx(hand, rel=1e-9)
    assert (mean[0] - torch.sigmoid(logits[0, 0])).abs() > 0.2  # λ = 0.047 has mean 0.30


def test_continuous_bernoulli_density_integrates_to_one():
    grid = torch.linspace(0, 1, 200_001, dtype=torch.float64).unsqueeze(1)  # one-pixel images
    for logit in (-4.0, -0.3, 0.0, 2.5):
        density = (-ContinuousBernoulli().nll(torch.full_like(grid, logit), grid)).exp()
        assert float(torch.trapezoid(density, grid[:, 0])) == pytest.approx(1.0, abs=1e-6)


def test_entropy_floor_is_the_bernoulli_nll_of_a_perfect_reconstruction():
    _, x = _tiny(2)
    perfect = torch.logit(x)
    assert entropy_floor(x).tolist() == pytest.approx(Bernoulli().nll(perfect, x).tolist(), rel=1e-9)
    assert entropy_floor(torch.tensor([[0.0, 1.0, 1.0]])).item() == 0.0


def test_beta_objective_matches_hand_sum_and_warms_up_linearly():
    recon, kl = torch.tensor(200.0, dtype=torch.float64), torch.tensor(12.0, dtype=torch.float64)
    assert float(BetaObjective(0.5)(recon, kl)) == 200.0 + 0.5 * 12.0
    warm = BetaObjective(2.0, warmup_epochs=4)
    weights = [warm.kl_weight(Progress(0, e)) for e in (0.0, 1.0, 2.5, 4.0, 9.0)]
    assert weights == [0.0, 0.5, 1.25, 2.0, 2.0]
    assert float(warm(recon, kl, Progress(0, 1.0))) == 200.0 + 0.5 * 12.0
    assert float(warm(recon, kl)) == 200.0 + 2.0 * 12.0  # validation and test: the end of the warm-up
    assert warm.schedule(Progress(0, 1.0)) == {"kl_weight": 0.5}
    assert BetaObjective(1.0).schedule(Progress(0, 1.0)) == {}


def test_capacity_rises_linearly_to_c_max_and_the_loss_is_gamma_times_the_gap():
    objective = CapacityObjective(gamma=100.0, c_max=25.0, c_steps=1000)
    steps = [0, 100, 250, 500, 999, 1000, 5000]
    capacities = [objective.capacity(Progress(s, 0.0)) for s in steps]
    assert capacities == pytest.approx([0.0, 2.5, 6.25, 12.5, 24.975, 25.0, 25.0])
    assert [objective.schedule(Progress(s, 0.0))["capacity"] for s in steps] == capacities
    recon, kl = torch.tensor(210.0, dtype=torch.float64), torch.tensor(10.0, dtype=torch.float64)
    assert float(objective(recon, kl, Progress(500, 0.0))) == pytest.approx(210.0 + 100.0 * 2.5)
    assert float(objective(recon, kl)) == pytest.approx(210.0 + 100.0 * 15.0)  # at C = c_max


def test_objectives_rebuild_from_their_hyperparameters_and_refuse_bad_values():
    for objective in (BetaObjective(0.3, 2.0), CapacityObjective(10.0, 5.0, 20)):
        rebuilt = objective_from(objective.hparams())
        assert type(rebuilt) is type(objective)
        assert vars(rebuilt) == vars(objective)
    with pytest.raises(ConfigError, match="c_steps=0: must be an integer >= 1"):
        CapacityObjective(c_steps=0)
    with pytest.raises(ConfigError, match="objective='kl': must be one of beta, capacity"):
        objective_from({"name": "kl"})


def test_kl_is_zero_only_at_the_prior():
    zeros = torch.zeros(2, 4)
    assert torch.equal(gaussian_kl(zeros, zeros), zeros)
    assert (gaussian_kl(torch.full((2, 4), 0.3), zeros) > 0).all()
    assert (gaussian_kl(zeros, torch.full((2, 4), -1.0)) > 0).all()


def _tiny_vae(likelihood="bernoulli"):
    torch.manual_seed(0)
    return MLPVAE(image_size=2, hidden_dims=[5], latent_dim=2, likelihood=likelihood).double()


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_iw_estimate_and_ess_match_hand_importance_sampling(likelihood):
    model, (_, x) = _tiny_vae(likelihood), _tiny(3, batch=2, pixels=4)
    torch.manual_seed(7)
    estimate = iw_estimate(model, x, samples=5, batch_images=1, batch_samples=2)
    torch.manual_seed(7)  # the same ε, drawn in the same order: image by image, 2 + 2 + 1 samples
    for i in range(2):
        mu, logvar = (t[0].detach().tolist() for t in model.encode(x[i : i + 1]))
        eps = torch.cat([torch.randn(k, 1, 2, dtype=torch.float64) for k in (2, 2, 1)])[:, 0].tolist()
        log_w = []
        for e in eps:
            z = [m + ei * math.exp(0.5 * lv) for m, ei, lv in zip(mu, e, logvar, strict=True)]
            with torch.no_grad():
                log_px_z = -float(model.nll(model.decode(torch.tensor([z], dtype=torch.float64)), x[i : i + 1])[0])
            log_pz = sum(-0.5 * (zi * zi + math.log(2 * math.pi)) for zi in z)
            log_qz = sum(-0.5 * (ei * ei + lv + math.log(2 * math.pi)) for ei, lv in zip(e, logvar, strict=True))
            log_w.append(log_px_z + log_pz - log_qz)
        w = [math.exp(v) for v in log_w]
        assert float(estimate.log_px[i]) == pytest.approx(math.log(sum(w) / 5), rel=1e-9)
        assert float(estimate.ess[i]) == pytest.approx(sum(w) ** 2 / sum(v * v for v in w), rel=1e-9)


def test_iw_ess_is_all_samples_when_the_posterior_is_the_prior_and_the_decoder_ignores_z():
    model = _tiny_vae()
    with torch.no_grad():
        for layer in (model.encoder[-1], model.decoder[-1]):  # q(z|x) = N(0, I) = p(z); logits independent of z
            layer.weight.zero_()
            layer.bias.zero_()
    _, x = _tiny(4, batch=4, pixels=4)
    estimate = iw_estimate(model, x, samples=64)
    assert torch.allclose(estimate.ess / 64, torch.ones(4, dtype=torch.float64))
    assert torch.allclose(-estimate.log_px, Bernoulli().nll(torch.zeros_like(x), x))  # then it is exact


def test_standard_error_is_sample_sd_over_root_n():
    values = torch.tensor([1.0, 2.0, 4.0, 7.0], dtype=torch.float64)
    mean = sum(values.tolist()) / 4
    sd = math.sqrt(sum((v - mean) ** 2 for v in values.tolist()) / 3)
    assert standard_error(values) == pytest.approx(sd / 2, rel=1e-12)
    assert math.isnan(standard_error(values[:1]))
