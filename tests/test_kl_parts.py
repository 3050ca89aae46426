"""The KL's decomposition (index-code MI, total correlation, dimension-wise KL) against cases with known answers,
and the β-TCVAE objective's minibatch estimator against the exact mixture and the analytic KL."""

import math

import pytest
import torch

from betavae.base.errors import ConfigError
from betavae.metrics.latents import kl_decomposition, posterior_sample
from betavae.model.networks import Posterior
from betavae.model.objectives import (
    KLParts,
    TCObjective,
    gaussian_kl,
    kl_parts,
    log_normal,
    objective_from,
    stratified_log_weights,
)


def mixture_entropy_1d(means, sd):
    """H of the equal-weight mixture of N(m, sd²) over ``means``, by the trapezoid rule on a fine grid (float64)."""
    z = torch.linspace(min(means) - 12 * sd, max(means) + 12 * sd, 400_001, dtype=torch.float64)
    q = sum(torch.exp(-0.5 * ((z - m) / sd) ** 2) for m in means) / (len(means) * sd * math.sqrt(2 * math.pi))
    return float(-torch.trapezoid(torch.xlogy(q, q), z))


def gaussian_entropy(sd, dims=1):
    return dims * 0.5 * math.log(2 * math.pi * math.e * sd**2)


def repeated(centres, sd, copies):
    """``copies`` images per centre, all with posterior N(centre, sd² I): the mixture is the centres' mixture."""
    mu = torch.tensor(centres, dtype=torch.float32).repeat_interleave(copies, 0)
    return Posterior(mu, torch.full_like(mu, 2 * math.log(sd)))


def within(result, part, expected, errors=4):
    """The estimate of ``part`` is within ``errors`` standard errors (plus float32 slack) of ``expected``."""
    return abs(result[part] - expected) <= errors * result[f"{part}_se"] + 1e-4


def test_posteriors_equal_to_the_prior_have_no_mi_tc_or_dimwise_kl():
    prior = Posterior(torch.zeros(300, 4), torch.zeros(300, 4))
    result = kl_decomposition(prior)
    assert [result[p] for p in KLParts._fields] == pytest.approx([0, 0, 0], abs=1e-5)


def test_a_product_grid_of_posteriors_has_no_total_correlation():
    """Means on a grid a_k × b_l with σ depending on each coordinate alone: the mixture factorises exactly."""
    a, b = torch.linspace(-2, 2, 15), torch.linspace(-1, 3, 12)
    mu = torch.cartesian_prod(a, b)
    logvar = torch.stack([2 * torch.log(0.2 + 0.05 * mu[:, 0].abs()), 2 * torch.log(0.3 + 0.0 * mu[:, 1])], 1)
    result = kl_decomposition(Posterior(mu, logvar), draws=3)
    assert result["tc"] == pytest.approx(0, abs=1e-4)
    assert result["mi"] > 1
    assert result["dimwise_kl"] > 0.5  # the other parts are not trivially 0


def test_two_posteriors_in_one_dimension_match_numerical_integration():
    """q(z) = ½N(−1, 0.5²) + ½N(1, 0.5²): MI = H(z) − H(z|x), TC = 0, dim-wise KL = −H(z) + ½log 2π + ½E[z²]."""
    m, sd = 1.0, 0.5
    h_z = mixture_entropy_1d([-m, m], sd)
    result = kl_decomposition(repeated([[-m], [m]], sd, 2000), draws=2)
    assert within(result, "mi", h_z - gaussian_entropy(sd))
    assert result["tc"] == pytest.approx(0, abs=1e-5)
    assert within(result, "dimwise_kl", -h_z + 0.5 * math.log(2 * math.pi) + 0.5 * (m**2 + sd**2))
    assert 0.2 < h_z - gaussian_entropy(sd) < math.log(2)  # informative: between nothing and one bit


def test_two_posteriors_in_two_correlated_dimensions_match_numerical_integration():
    """q(z) = ½N((−1, −1), 0.5²I) + ½N((1, 1), 0.5²I). Rotated by 45°, it is a 1-D mixture at ±√2 times an
    independent N(0, 0.5²), so H(z) = H_mix(±√2) + H(N(0, 0.5²)); each marginal is the 1-D mixture at ±1."""
    m, sd = 1.0, 0.5
    h_z = mixture_entropy_1d([-math.sqrt(2) * m, math.sqrt(2) * m], sd) + gaussian_entropy(sd)
    h_marginal = mixture_entropy_1d([-m, m], sd)
    kl_marginal = -h_marginal + 0.5 * math.log(2 * math.pi) + 0.5 * (m**2 + sd**2)
    result = kl_decomposition(repeated([[-m, -m], [m, m]], sd, 2000), draws=2)
    assert within(result, "mi", h_z - gaussian_entropy(sd, 2))
    assert within(result, "tc", 2 * h_marginal - h_z)
    assert within(result, "dimwise_kl", 2 * kl_marginal)
    assert 2 * h_marginal - h_z > 0.2  # a real total correlation to find


def test_mi_saturates_at_log_n_for_posteriors_that_never_overlap():
    """n far-apart, narrow posteriors identify their image: I(x; z) = log n, the estimator's ceiling."""
    mu = torch.arange(50, dtype=torch.float32).view(-1, 1) * 10
    result = kl_decomposition(Posterior(mu, torch.full_like(mu, math.log(0.01))))
    assert result["mi"] == pytest.approx(math.log(50), abs=1e-5)


def test_chunked_exact_parts_equal_the_plain_formula():
    """The fast path (one reused buffer, fixed shift) gives kl_parts' values on random posteriors."""
    g = torch.Generator().manual_seed(0)
    posterior = Posterior(torch.randn(300, 5, generator=g) * 2, torch.randn(300, 5, generator=g) - 2)
    fast = kl_decomposition(posterior, seed=7)
    z = posterior_sample(posterior, 7)
    plain = kl_parts(z, posterior, posterior.mu, posterior.logvar, torch.full((300,), -math.log(300)))
    assert [fast[p] for p in KLParts._fields] == pytest.approx([float(v.mean()) for v in plain], rel=1e-5, abs=1e-5)


@pytest.mark.slow
def test_the_parts_sum_to_the_analytic_kl_of_a_trained_encoder_within_monte_carlo_error(trained_posterior):
    result = kl_decomposition(trained_posterior)
    analytic = float(gaussian_kl(*trained_posterior).sum(1).mean())
    total = sum(result[p] for p in KLParts._fields)
    assert abs(total - analytic) <= 4 * sum(result[f"{p}_se"] for p in KLParts._fields)
    assert 0 < result["mi"] <= math.log(len(trained_posterior.mu)) + 1e-6
    assert result["tc"] > 0
    assert result["dimwise_kl"] > 0


@pytest.fixture(scope="module")
def trained_posterior(real_data_dir):
    """The posteriors of 2,000 real test images under an MLP VAE trained 300 Adam steps on real training images."""
    from betavae.data.fashion_mnist import FashionMNISTDataModule
    from betavae.model.networks import MLPVAE, encode_all

    torch.manual_seed(0)
    data = FashionMNISTDataModule(root=real_data_dir)
    train = data.images("train")[0]
    model = MLPVAE(hidden_dims=[200], latent_dim=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(300):
        x = train[torch.randint(len(train), (128,))]
        mu, logvar = model.encode(x)
        loss = (model.nll(model.decode(model.reparameterize(mu, logvar)), x) + gaussian_kl(mu, logvar).sum(1)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encode_all(model, data.images("test")[0][:2000])


# β-TCVAE's minibatch estimator


def test_stratified_estimate_of_the_aggregate_density_is_unbiased():
    """For a sample of image 0 and random minibatches holding image 0, the mean of q̂(z) is the exact q(z)."""
    g = torch.Generator().manual_seed(1)
    n, batch = 40, 8
    mu, logvar = torch.randn(n, 3, generator=g, dtype=torch.float64), torch.randn(n, 3, generator=g).double() - 1
    z = mu[0] + 0.5 * torch.randn(3, generator=g, dtype=torch.float64)
    exact = log_normal(z, mu, logvar).sum(-1).logsumexp(0).exp() / n
    log_w = stratified_log_weights(batch, n).double()[0]
    draws = 20_000
    others = 1 + torch.rand(draws, n - 1, generator=g).argsort(1)[:, : batch - 1]  # M − 1 distinct other images
    members = torch.cat([torch.zeros(draws, 1, dtype=torch.long), others], 1)
    estimates = (log_normal(z, mu[members], logvar[members]).sum(-1) + log_w).logsumexp(1).exp()
    assert float(estimates.mean()) == pytest.approx(float(exact), abs=4 * float(estimates.std()) / math.sqrt(draws))


def test_stratified_estimate_over_the_whole_set_is_the_exact_decomposition():
    """With the minibatch = all N images, the β-TCVAE estimator's parts are the exact ones (same samples)."""
    g = torch.Generator().manual_seed(2)
    posterior = Posterior(torch.randn(64, 4, generator=g), torch.randn(64, 4, generator=g) - 1)
    z = posterior_sample(posterior, 3)
    batch = TCObjective(dataset_size=64).parts(z, *posterior)
    exact = kl_decomposition(posterior, seed=3)
    assert list(batch) == pytest.approx([exact[p] for p in KLParts._fields], rel=1e-5, abs=1e-5)


def test_tcvae_with_unit_weights_is_the_beta_1_objective_in_expectation():
    """α = β = γ = 1: on every batch exactly recon + (log q(z|x) − log p(z)), the one-sample KL estimate; its
    mean over draws is the analytic KL, within the draws' standard error."""
    g = torch.Generator().manual_seed(4)
    mu, logvar = torch.randn(128, 6, generator=g), torch.randn(128, 6, generator=g) - 1
    objective, recon = TCObjective(dataset_size=55_000), torch.tensor(200.0)
    estimates = []
    for draw in range(100):
        z = posterior_sample(Posterior(mu, logvar), draw)
        prior = log_normal(z, torch.zeros(()), torch.zeros(()))
        one_sample_kl = float((log_normal(z, mu, logvar) - prior).sum(1).mean())
        loss = float(objective(recon, torch.tensor(0.0), parts=objective.parts(z, mu, logvar)))
        assert loss - 200.0 == pytest.approx(one_sample_kl, abs=1e-3)
        estimates.append(one_sample_kl)
    estimates = torch.tensor(estimates)
    analytic = float(gaussian_kl(mu, logvar).sum(1).mean())
    assert float(estimates.mean()) == pytest.approx(analytic, abs=4 * float(estimates.std()) / 10)


def test_tcvae_weights_each_part_by_its_own_coefficient():
    objective = TCObjective(beta=6.0, alpha=2.0, gamma=0.5, dataset_size=100)
    parts = KLParts(torch.tensor(1.0), torch.tensor(10.0), torch.tensor(100.0))
    assert float(objective(torch.tensor(3.0), torch.tensor(0.0), parts=parts)) == 3 + 2 * 1 + 6 * 10 + 0.5 * 100


def test_tcvae_objective_is_rebuilt_from_its_hyperparameters_and_checks_them():
    objective = TCObjective(beta=4.0, dataset_size=55_000)
    assert vars(objective_from(objective.hparams())) == vars(objective)
    with pytest.raises(ConfigError, match=r"^alpha=-1"):  # the entry point names it objective.alpha
        TCObjective(alpha=-1)
    with pytest.raises(ConfigError, match=r"^batch_size=1: must be an integer >= 2 for objective=tcvae"):
        TCObjective(batch_size=1)
    with pytest.raises(ConfigError, match=r"^dataset_size=64: must be an integer >= 128, the training batch"):
        TCObjective(batch_size=128, dataset_size=64)
    with pytest.raises(ConfigError, match=r"objective\.dataset_size is not set"):
        TCObjective().parts(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1))


def test_validation_parts_come_from_chunks_of_the_training_batch_whatever_the_evaluation_batches():
    """The images in the order they come, cut into chunks of the objective's batch size across the evaluation
    batches' boundaries: two ways of batching one epoch give the same chunks and the same estimates."""
    from betavae.model.epoch import EpochTerms

    objective, terms = TCObjective(batch_size=4, dataset_size=100), EpochTerms()
    generator = torch.Generator().manual_seed(0)
    z, mu, logvar = (torch.randn(23, 2, generator=generator) for _ in range(3))

    def epoch(batches):
        start = 0
        for n in batches:
            terms.add_samples("val", objective.batch_size, objective.parts, z[start : start + n],
                              mu[start : start + n], logvar[start : start + n])  # fmt: skip
            start += n
        return terms.take_chunks("val", objective.parts)

    first, second = epoch([10, 10, 3]), epoch([7, 7, 7, 2])
    assert [n for _, n in first] == [4, 4, 4, 4, 4, 3]
    assert [n for _, n in second] == [4, 4, 4, 4, 4, 3]
    for (a, _), (b, _) in zip(first, second, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(first[2][0], torch.stack(list(objective.parts(z[8:12], mu[8:12], logvar[8:12]))))
