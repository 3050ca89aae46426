"""Modularity and explicitness (Ridgeway & Zemel 2018), as disentanglement_lib's `modularity_explicitness` computes
them: modularity from the binned latent × factor mutual information, explicitness as how well a logistic regression
on the standardised codes reads each factor (one-vs-rest ROC-AUC). Codes [n, D] floats, factors [n, K] indices."""

from __future__ import annotations

import warnings

import numpy as np

from betavae.metrics.information import discretize, mutual_information, standardizer


def modularity(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Per latent, 1 − (Σ_k I² − max_k I²) / (max_k I² · (K − 1)) of its binned mutual information with the factors
    (1: it informs about one factor alone), 0 for a latent that informs about none; the mean over latents. A
    duplicated latent keeps it 1; a latent holding two factors lowers it."""
    squared = mutual_information(discretize(codes, bins), factors) ** 2
    top, num_factors = squared.max(axis=1), squared.shape[1]
    if num_factors == 1:
        return float(np.mean(top > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_latent = 1.0 - (squared.sum(axis=1) - top) / (top * (num_factors - 1))
    return float(np.mean(np.where(top > 0, per_latent, 0.0)))


def roc_auc(labels: np.ndarray, classes: np.ndarray, probabilities: np.ndarray) -> float:
    """The mean over classes of the ROC-AUC of each class's predicted probability against the rest (sklearn's
    macro average of the indicator matrix, as disentanglement_lib scores it); a class absent from ``labels``, or
    the only one there, has no AUC and is left out."""
    from sklearn.metrics import roc_auc_score

    indicator = labels[:, None] == classes[None, :]
    scored = [c for c in range(len(classes)) if 0 < indicator[:, c].sum() < len(labels)]
    return float(np.mean([roc_auc_score(indicator[:, c], probabilities[:, c]) for c in scored])) if scored else 0.5


def explicitness(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray
) -> float:
    """Per factor, sklearn's default LogisticRegression fitted on the standardised training codes, its one-vs-rest
    ROC-AUC on the test codes; the mean over factors. 1: each factor's values are ranked apart by a linear read of
    the code; 0.5: no better than chance (a constant code). Invariant to rotations of the code, unlike modularity."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    scale = standardizer(codes_train)
    train, test = scale(codes_train), scale(codes_test)
    found = []
    for k in range(factors_train.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # sklearn's 100 iterations, as the reference
            model = LogisticRegression().fit(train, factors_train[:, k])
        found.append(roc_auc(factors_test[:, k], model.classes_, model.predict_proba(test)))
    return float(np.mean(found))
