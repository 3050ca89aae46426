"""Downstream sample efficiency (Locatello et al. 2019, §5.5; disentanglement_lib's `downstream_task`): how well
a classifier reads each factor from the codes after 10, 100, 1,000 and 10,000 labelled examples, for a
cross-validated logistic regression and for gradient-boosted trees, and the ratio of the accuracy at 100 to that at
10,000. Codes [n, D] floats, factors [n, K] indices."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

SIZES = (10, 100, 1_000, 10_000)  # labelled codes to train on: disentanglement_lib's unsupervised_study_v1
EFFICIENCY = (100, 10_000)  # sample efficiency: the accuracy at the first over that at the second
PREDICTORS = ("lr", "gbt")  # a cross-validated logistic regression, gradient-boosted trees (`predictor`)


def predictor(name: str, seed: int) -> object:
    """disentanglement_lib's predictors: LogisticRegressionCV (10 values of C, 5 unshuffled folds) or sklearn's
    default GradientBoostingClassifier (100 depth-3 trees; ours seeded)."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import KFold

    if name == "lr":
        return LogisticRegressionCV(Cs=10, cv=KFold(n_splits=5))
    return GradientBoostingClassifier(random_state=seed)


def accuracies(
    name: str, codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray,
    seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """Per factor, the test accuracy of predictor ``name`` fitted on the training codes, [K]. Where the training
    codes show the factor one value only, no classifier can be fitted: the prediction is that value."""
    from sklearn.exceptions import ConvergenceWarning

    found = []
    for k in range(factors_train.shape[1]):
        seen = np.unique(factors_train[:, k])
        if len(seen) == 1:
            found.append(np.mean(factors_test[:, k] == seen[0]))
            continue
        with warnings.catch_warnings():  # sklearn's notices of its coming defaults and of lbfgs's 100 iterations
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = predictor(name, seed).fit(codes_train, factors_train[:, k])
        found.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    return np.array(found)


def sample_efficiency(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    seed: int = 0,
    known: Mapping[str, np.ndarray] | None = None,
    sizes: tuple[int, ...] = SIZES,
    efficiency: tuple[int, int] = EFFICIENCY,
) -> dict[str, float]:
    """Each predictor's mean test accuracy over the factors after the first n training codes, for each n of
    ``sizes`` the training codes reach (`downstream_lr_100`, ...), and the ratio at ``efficiency``
    (`sample_efficiency` for logistic regression, `sample_efficiency_gbt` for the trees) where both sizes were
    reached. ``known``: a predictor's per-factor accuracies after all training codes, fitted elsewhere on the same
    codes (DCI's trees are these)."""
    found = {}
    for name in PREDICTORS:
        for n in (n for n in sizes if n <= len(codes_train)):
            if n == len(codes_train) and known and name in known:
                per_factor = known[name]
            else:
                per_factor = accuracies(name, codes_train[:n], factors_train[:n], codes_test, factors_test, seed)
            found[f"downstream_{name}_{n}"] = float(np.mean(per_factor))
        few, many = (found.get(f"downstream_{name}_{n}") for n in efficiency)
        if few is not None and many:
            found["sample_efficiency" + ("" if name == "lr" else f"_{name}")] = few / many
    return found


def unreached(num_train: int) -> str | None:
    """The one line saying which of `SIZES` ``num_train`` training codes leave out (None: they reach all)."""
    missed = [n for n in SIZES if n > num_train]
    if not missed:
        return None
    return (f"downstream sample efficiency: disentanglement.num_train={num_train} codes reach "
            f"{', '.join(f'{n:,}' for n in SIZES if n <= num_train) or 'none'} of its sizes, not "
            f"{', '.join(f'{n:,}' for n in missed)}; the ratio of 100 to 10,000 needs num_train >= 10,000")  # fmt: skip
