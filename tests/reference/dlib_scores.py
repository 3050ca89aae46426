"""disentanglement_lib 1.5's own modularity/explicitness, IRS and downstream-task functions on given codes: run by
tests/test_factor_scores.py in the reference venv (`make reference`), `python dlib_scores.py arrays.npz`, printing
JSON. The arrays (codes_train [n, D], factors_train [n, K], codes_test, factors_test, and each predictor's training
sizes, sizes_lr and sizes_gbt) reach each function through its own sampling loop: a data set that serves the given
rows in the order the function asks for them, and a representation function that is the identity (the
"observations" are the codes)."""

import json
import sys

import gin
import numpy as np

sys.modules["gin.tf"] = gin  # the metric modules import gin.tf for its configurable decorator only

from disentanglement_lib.evaluation.metrics import downstream_task, irs, modularity_explicitness, utils  # noqa: E402


class Rows:
    """A ground-truth data set that serves the rows of (factors, codes) sets in turn, as each sampling loop asks."""

    def __init__(self, *sets):
        self.sets, self.at = list(sets), 0

    def sample(self, num, random_state):
        factors, codes = self.sets[0]
        rows = slice(self.at, self.at + num)
        self.at += num
        if self.at >= len(factors):
            self.sets.pop(0)
            self.at = 0
        return factors[rows], codes[rows]


def main(path):
    arrays = np.load(path)
    train = (arrays["factors_train"], arrays["codes_train"])
    test = (arrays["factors_test"], arrays["codes_test"])
    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", 20)
    state = np.random.RandomState(0)
    identity = lambda codes: codes  # noqa: E731
    found = modularity_explicitness.compute_modularity_explicitness(
        Rows(train, test), identity, state, num_train=len(train[0]), num_test=len(test[0])
    )
    found |= irs.compute_irs(Rows(train), identity, state, num_train=len(train[0]), batch_size=16)
    for name, fn in (("lr", utils.logistic_regression_cv), ("gbt", utils.gradient_boosting_classifier)):
        gin.bind_parameter("predictor.predictor_fn", fn)
        sizes = [int(n) for n in arrays[f"sizes_{name}"]]
        served = [s for n in sizes for s in ((train[0][:n], train[1][:n]), test)]
        scores = downstream_task.compute_downstream_task(
            Rows(*served), identity, state, num_train=sizes, num_test=len(test[0])
        )
        found |= {f"downstream_{name}_{n}": scores[f"{n}:mean_test_accuracy"] for n in sizes}
    print(json.dumps({k: float(v) for k, v in found.items() if np.ndim(v) == 0}))


if __name__ == "__main__":
    main(sys.argv[1])
