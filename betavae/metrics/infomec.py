"""InfoMEC (Hsu et al. 2023, "Disentanglement via latent quantization"; 2024, "Tripod"): InfoM (modularity) and
InfoC (compactness) from a latent × factor mutual information estimated without bins (the k-nearest-neighbour
estimator of sklearn's `mutual_info_classif`) over each factor's entropy, latents of small range pruned by the
authors' rule, and InfoE (explicitness), how much of each factor's entropy a linear read of the code removes. As
the authors' `disentangle/metrics/infomec.py` defines them (kylehkhsu/latent_quantization); docs/evaluation.md says
where a degenerate code gets a value theirs does not. Codes [n, D] floats, factors [n, K] indices."""

from __future__ import annotations

import math
import warnings

import numpy as np

from betavae.metrics.information import entropy, standardizer

NEIGHBORS = 10  # the authors' n_neighbors
RANGE_FRACTION = 20  # a latent is active when its range exceeds the largest latent range over this


def labels(factors: np.ndarray) -> np.ndarray:
    """Each factor's values as 0, 1, … in sorted order (sklearn's LabelEncoder), [n, K]."""
    return np.stack([np.unique(column, return_inverse=True)[1] for column in factors.T], axis=1)


def normalized_mi(codes: np.ndarray, factors: np.ndarray, seed: int = 0) -> np.ndarray:
    """I(factor k; latent d) over H(factor k), [K, D]: sklearn's k-nearest-neighbour estimate (10 neighbours) on
    each standardised latent, its tie-breaking noise drawn from ``seed``."""
    from sklearn.feature_selection import mutual_info_classif

    x, y = standardizer(codes)(codes), labels(factors)
    rng = np.random.default_rng(seed)
    mi = np.stack([mutual_info_classif(x, y[:, k], n_neighbors=NEIGHBORS, random_state=int(rng.integers(2**31)))
                   for k in range(y.shape[1])])  # fmt: skip
    return mi / entropy(y)[:, None]


def active(codes: np.ndarray) -> np.ndarray:
    """The authors' pruning: latents whose range over the codes exceeds the largest range over 20, [D]."""
    ranges = codes.max(axis=0) - codes.min(axis=0)
    return ranges > ranges.max() / RANGE_FRACTION


def concentration(nmi: np.ndarray, axis: int) -> float | None:
    """The mean over the other axis of max/sum along ``axis``, rescaled so that an even spread over the
    ``axis``'s n entries scores 0 and one entry holding all 1; a row or column of zeros counts as an even spread;
    None with one entry (every spread is then both even and concentrated)."""
    n = nmi.shape[axis]
    if n < 2:
        return None
    total = nmi.sum(axis=axis)
    share = np.divide(nmi.max(axis=axis), total, out=np.full(total.shape, 1 / n), where=total > 0)
    return float((share.mean() - 1 / n) / (1 - 1 / n))


def infoe(codes: np.ndarray, factors: np.ndarray) -> float:
    """Per factor, (H₀ − H) / H₀, H the training log loss of an unpenalised, class-balanced multinomial logistic
    regression on the standardised codes (lbfgs, 100 iterations, as the authors') and H₀ that of the same model on
    no features (ln of the number of values: its balanced weights make the uniform guess optimal); the mean."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    x, y = standardizer(codes)(codes), labels(factors)
    found = []
    for k in range(y.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # 100 iterations, as the reference
            model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=100).fit(x, y[:, k])
        null = math.log(len(model.classes_))
        found.append((null - log_loss(y[:, k], model.predict_proba(x), labels=model.classes_)) / null)
    return float(np.mean(found))


def infomec(codes: np.ndarray, factors: np.ndarray, seed: int = 0) -> dict[str, float]:
    """InfoM, InfoC and InfoE of the codes: InfoM from each active latent's normalised MI over the factors, InfoC
    from each factor's over the active latents (both 0 with no active latent; InfoC left out with one, and InfoM
    with one factor: see `concentration`), InfoE over all latents."""
    keep = active(codes)
    found = {"infomec_e": infoe(codes, factors)}
    if not keep.any():
        return {"infomec_m": 0.0, "infomec_c": 0.0, **found}
    nmi = normalized_mi(codes[:, keep], factors, seed)
    for name, axis in (("infomec_m", 0), ("infomec_c", 1)):
        if (value := concentration(nmi, axis)) is not None:
            found[name] = value
    return found
