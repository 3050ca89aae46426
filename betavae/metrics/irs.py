"""The interventional robustness score (Suter et al. 2019), as disentanglement_lib's `irs` computes it: how little
each latent moves when the factors it does not depend on change. Codes [n, D] floats, factors [n, K] indices."""

from __future__ import annotations

import numpy as np

from betavae.metrics.information import discretize

QUANTILE = 0.99  # disentanglement_lib's diff_quantile: the paper's maximum (1.0) made robust to outliers


def irs(codes: np.ndarray, factors: np.ndarray, bins: int = 20, quantile: float = QUANTILE) -> float:
    """Per latent and factor, 1 − the mean over the factor's values of the ``quantile`` of |z − E[z | value]|,
    over the latent's largest deviation from its mean; each latent's best factor, averaged with its largest
    deviation as weight. Latents constant over the codes are dropped (none left: 0); factors are binned as
    disentanglement_lib does (``bins`` equal-width bins, exact for factors of at most ``bins`` values). 1: every
    latent is fixed by one factor alone; it does not ask that every factor have a latent."""
    active = codes[:, codes.var(axis=0) > 0]
    if not active.shape[1]:
        return 0.0
    binned = discretize(factors, bins)
    largest = np.abs(active - active.mean(axis=0)).max(axis=0)  # [L]
    deviation = np.zeros((active.shape[1], binned.shape[1]))
    for k in range(binned.shape[1]):
        values = np.unique(binned[:, k])
        for value in values:
            group = active[binned[:, k] == value]
            deviation[:, k] += np.percentile(np.abs(group - group.mean(axis=0)), quantile * 100, axis=0)
        deviation[:, k] /= len(values)
    per_latent = (1.0 - deviation / largest[:, None]).max(axis=1)
    return float(np.average(per_latent, weights=largest))
