"""UDR and the label-free scores against known answers: disentanglement_lib's own test cases, and the cases that
matter for trained models (a rotated latent space, a collapsed model)."""

import math

import numpy as np
import pytest
import scipy.stats
from scipy.stats import special_ortho_group

from betavae.metrics import udr

RNG = np.random.default_rng(0)
N, D = 1000, 10
FACTORS = RNG.uniform(size=(N, D))  # independent latents of one model
ACTIVE = np.ones(D)  # mean KL per latent: every latent informative


def permuted_and_sign_flipped(codes, seed=1):
    rng = np.random.default_rng(seed)
    copy = codes[:, rng.permutation(codes.shape[1])].copy()
    copy[:, rng.choice(codes.shape[1], codes.shape[1] // 2, replace=False)] *= -1
    return copy


@pytest.mark.parametrize("matrix", ["lasso", "spearman"])
def test_a_permuted_sign_flipped_copy_scores_between_0_8_and_1(matrix):
    codes = np.stack([FACTORS, permuted_and_sign_flipped(FACTORS)])
    scores = udr.udr(udr.pairwise_scores(codes, np.stack([ACTIVE, ACTIVE]), matrix))
    assert all(0.8 <= s <= 1.0 for s in scores), scores


def one_informative_latent(seed):
    rng = np.random.default_rng(seed)
    return np.concatenate([FACTORS[:, :1], rng.uniform(size=(N, D - 1))], axis=1)


def test_one_informative_latent_among_noise_scores_low_unfiltered_and_high_filtered():
    codes = np.stack([one_informative_latent(1), one_informative_latent(2)])
    kl = np.zeros((2, D))
    kl[:, 0] = 1.0  # only the first latent carries information
    unfiltered = udr.udr(udr.pairwise_scores(codes, kl, filter_low_kl=False))
    filtered = udr.udr(udr.pairwise_scores(codes, kl, filter_low_kl=True))
    assert all(0.0 <= s <= 0.2 for s in unfiltered), unfiltered
    assert all(0.8 <= s <= 1.0 for s in filtered), filtered


@pytest.mark.parametrize(
    ("matrix", "low", "high"),
    [
        (np.eye(3), 1.0, 1.0),
        (np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), 0.6, 0.7),
        (np.ones((3, 3)), 0.3, 0.4),
        (np.zeros((3, 3)), 0.0, 0.0),
        (np.zeros((0, 4)), 0.0, 0.0),  # a model with no active latent: nothing to match
    ],
)
def test_relative_strength_of_known_matrices(matrix, low, high):
    assert low <= udr.relative_strength(matrix) <= high


def test_spearman_correlation_finds_copies_and_duplicates_as_scipy_does():
    rng = np.random.RandomState(0)
    a = rng.random_sample((1000, 3))
    assert np.allclose(udr.spearman_correlation(a, a.copy()), np.eye(3), atol=0.1)
    b = a.copy()
    b[:, 1] = b[:, 0]
    assert np.allclose(udr.spearman_correlation(a, b), [[1, 1, 0], [0, 0, 0], [0, 0, 1]], atol=0.1)
    reference = np.abs(scipy.stats.spearmanr(a, b)[0][:3, 3:])  # one call over all columns: a's, then b's
    assert np.allclose(udr.spearman_correlation(a, b), reference, atol=1e-12)


def test_lasso_correlation_finds_copies_and_duplicates():
    rng = np.random.RandomState(0)
    a = rng.random_sample((1000, 3)) * 10.0
    assert np.allclose(udr.lasso_correlation(a, a.copy()), np.eye(3), atol=0.2)
    b = a.copy()
    b[:, 1] = b[:, 0]
    assert np.allclose(udr.lasso_correlation(a, b), [[1, 1, 0], [0, 0, 0], [0, 0, 1]], atol=0.2)


@pytest.mark.parametrize("matrix", ["lasso", "spearman"])
def test_a_random_rotation_of_one_models_latent_space_lowers_its_udr(matrix):
    rotation = special_ortho_group.rvs(D, random_state=3)
    gaussian = RNG.normal(size=(N, D))
    codes = np.stack([gaussian, permuted_and_sign_flipped(gaussian), gaussian @ rotation])
    scores = udr.udr(udr.pairwise_scores(codes, np.ones((3, D)), matrix))
    assert scores[2] < min(scores[0], scores[1]) - 0.2, scores


def test_a_fully_collapsed_model_gets_udr_zero_and_leaves_the_others_scores_defined():
    codes = np.stack([FACTORS, permuted_and_sign_flipped(FACTORS), np.zeros((N, D))])
    kl = np.stack([ACTIVE, ACTIVE, np.zeros(D)])
    pairwise = udr.pairwise_scores(codes, kl)
    scores = udr.udr(pairwise)
    assert scores[2] == 0.0
    assert np.isnan(np.diag(pairwise)).all()
    assert all(np.isfinite(scores))
    assert pairwise[0, 1] > 0.8  # the two models that agree still do


def test_the_gaussian_total_correlation_of_independent_latents_is_near_zero_and_of_correlated_ones_its_formula():
    independent = RNG.normal(size=(100_000, 5))
    assert abs(udr.gaussian_total_correlation(independent)) < 0.01
    correlated = RNG.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], size=100_000)
    assert udr.gaussian_total_correlation(correlated) == pytest.approx(-0.5 * math.log(1 - 0.81), abs=0.02)
    assert math.isnan(udr.gaussian_total_correlation(np.zeros((10, 2))))  # a constant latent: undefined


def test_the_mutual_information_of_independent_latents_is_near_zero_and_of_a_duplicated_one_large():
    independent = RNG.normal(size=(10_000, 4))
    duplicated = np.concatenate([independent, independent[:, :1]], axis=1)
    assert udr.mutual_information_score(independent) < 0.03
    assert udr.mutual_information_score(duplicated) > 5 * udr.mutual_information_score(independent) + 0.1
    assert udr.mutual_information_score(independent[:, :1]) == 0.0
