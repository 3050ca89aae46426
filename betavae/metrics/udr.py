"""Unsupervised scores of representations, needing no labels: UDR (Duan et al. 2020, "Unsupervised model
selection for variational disentangled representation learning"), which scores each of M models of one setting
by how well its active latents match one-to-one those of the others, and the label-free scores of one model's
codes (disentanglement_lib's `unsupervised_metrics`: the Gaussian total correlation of the means, the mean
pairwise mutual information of the discretised means). Plain functions of codes: posterior means [M, n, D] of
the same n images, and each latent's mean KL on them [M, D]. Definitions and defaults are disentanglement_lib's
(`evaluation/udr/metrics/udr.py`, `evaluation/metrics/unsupervised_metrics.py`); docs/evaluation.md says where
ours differ."""

from __future__ import annotations

import numpy as np
import scipy.stats

from betavae.metrics.information import discretize, mutual_information

KL_THRESHOLD = 0.01  # nats: a latent whose mean KL is at most this carries nothing and is left out
LASSO_ALPHA = 0.1


def relative_strength(corr: np.ndarray) -> float:
    """How one-to-one a [Da, Db] matrix of |correlations| is: per column and per row, its largest entry squared
    over its sum, averaged over columns, over rows, then the two averaged (1: a permutation; 0: all zero). An
    all-zero column or row counts 0; an empty matrix (no active latent on one side) scores 0."""
    if corr.size == 0:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        columns = np.nan_to_num(corr.max(axis=0) ** 2 / corr.sum(axis=0))
        rows = np.nan_to_num(corr.max(axis=1) ** 2 / corr.sum(axis=1))
    return float((columns.mean() + rows.mean()) / 2)


def lasso_correlation(a: np.ndarray, b: np.ndarray, alpha: float = LASSO_ALPHA) -> np.ndarray:
    """|Coefficients| [Da, Db] of a Lasso regression (α = ``alpha``) predicting each latent of ``b`` from all of
    ``a``'s (codes [n, D], standardised): entry (i, j) is how much latent j of b needs latent i of a."""
    from sklearn.linear_model import Lasso

    return np.abs(Lasso(alpha=alpha).fit(a, b).coef_).T


def spearman_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|Spearman rank correlation| [Da, Db] of every latent of ``a`` with every latent of ``b`` (codes [n, D]);
    0 where a latent is constant. The Pearson correlation of the ranks (ties averaged), as scipy.stats.spearmanr,
    computed for all pairs at once rather than one call per pair."""

    def standard_ranks(x: np.ndarray) -> np.ndarray:
        ranks = scipy.stats.rankdata(x, axis=0)
        spread = ranks.std(axis=0)
        return np.divide(ranks - ranks.mean(axis=0), spread, out=np.zeros_like(ranks), where=spread > 0)

    return np.abs(standard_ranks(a).T @ standard_ranks(b) / len(a))


def standardised(codes: np.ndarray, kl: np.ndarray, threshold: float = KL_THRESHOLD) -> np.ndarray:
    """Each latent of each model scaled to mean 0 and sd 1 over the images, the inactive ones (mean KL ≤
    ``threshold``) set to 0, so no correlation can read them: codes [M, n, D], kl [M, D]."""
    mean, sd = codes.mean(axis=1, keepdims=True), codes.std(axis=1, keepdims=True)
    scaled = np.divide(codes - mean, sd, out=np.zeros_like(codes, dtype=float), where=sd > 0)
    return scaled * (kl > threshold)[:, None, :]


def pairwise_scores(codes: np.ndarray, kl: np.ndarray, matrix: str = "lasso", threshold: float = KL_THRESHOLD,
                    filter_low_kl: bool = True, alpha: float = LASSO_ALPHA) -> np.ndarray:  # fmt: skip
    """[M, M]: entry (i, j) the relative strength of the correlation matrix from model i's latents to model j's
    (rows and columns of inactive latents left out with ``filter_low_kl``); NaN on the diagonal, which compares
    nothing. ``matrix``: "lasso" or "spearman"."""
    if matrix not in ("lasso", "spearman"):
        raise ValueError(f"matrix={matrix!r}: must be lasso or spearman")
    scaled, active = standardised(codes, kl, threshold), kl > threshold
    scores = np.full((len(codes), len(codes)), np.nan)
    for i in range(len(codes)):
        for j in range(len(codes)):
            if i == j:
                continue
            corr = lasso_correlation(scaled[i], scaled[j], alpha) if matrix == "lasso" else (
                spearman_correlation(scaled[i], scaled[j]))  # fmt: skip
            if filter_low_kl:
                corr = corr[active[i]][:, active[j]]
            scores[i, j] = relative_strength(corr)
    return scores


def udr(pairwise: np.ndarray) -> np.ndarray:
    """Each model's UDR [M]: the median of its pairwise scores as the model predicted (column i of
    `pairwise_scores`, the diagonal left out), as disentanglement_lib aggregates them."""
    return np.array([np.median(np.delete(pairwise[:, i], i)) for i in range(len(pairwise))])


def gaussian_total_correlation(codes: np.ndarray) -> float:
    """KL between a Gaussian with the covariance of the codes [n, D] and the product of its marginals, in nats: 0
    for uncorrelated latents, growing as they covary; NaN where a latent is constant (its log variance is −∞)."""
    cov = np.atleast_2d(np.cov(codes, rowvar=False))
    diagonal = np.diag(cov)
    if (diagonal <= 0).any():
        return float("nan")
    return float(0.5 * (np.log(diagonal).sum() - np.linalg.slogdet(cov)[1]))


def mutual_information_score(codes: np.ndarray, bins: int = 20) -> float:
    """The mean mutual information (nats) between two different latents of the codes [n, D], each discretised into
    ``bins`` equal-width bins over its range; 0 for one latent."""
    dims = codes.shape[1]
    if dims < 2:
        return 0.0
    discrete = discretize(codes, bins)
    matrix = mutual_information(discrete, discrete)
    np.fill_diagonal(matrix, 0.0)
    return float(matrix.sum() / (dims * dims - dims))
