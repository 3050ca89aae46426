"""Modularity and explicitness, IRS, InfoMEC and the downstream sample efficiency against cases with known answers
(codes of every combination of four factors once: perfectly disentangled, rotated, duplicated, collapsed, one
latent), and against disentanglement_lib 1.5's own functions run on the same codes (`make reference`); the scorer's
families, sampled codes and refusals."""

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from betavae.metrics import disentanglement as scores
from betavae.metrics.downstream import sample_efficiency
from betavae.metrics.infomec import infomec
from betavae.metrics.irs import irs
from betavae.metrics.modularity import explicitness, modularity
from betavae.metrics.registry import Stage
from betavae.metrics.suite import Suite

VALUES = [3, 4, 5, 6]
GRID = np.stack(np.meshgrid(*[np.arange(v) for v in VALUES], indexing="ij"), -1).reshape(-1, len(VALUES))
KNOWN_CODES = {  # factors [n, K] → codes [n, D]; on GRID every factor is independent of the others exactly
    "perfect": lambda f: f * 1.0,
    "rotated": lambda f: np.c_[f[:, 0] + f[:, 1], f[:, 0] - f[:, 1], f[:, 2:]] * 1.0,
    "duplicated": lambda f: np.c_[f, f[:, :1]] * 1.0,
    "collapsed": lambda f: np.zeros((len(f), 4)),
    "one latent": lambda f: np.c_[f[:, :1], np.zeros((len(f), 3))] * 1.0,
}
REFERENCE_PYTHON = Path(__file__).parents[1] / ".venv-reference" / "bin" / "python"


def code(kind):
    return KNOWN_CODES[kind](GRID)


@pytest.mark.parametrize("kind", ["perfect", "duplicated"])
def test_latents_that_each_inform_about_one_factor_have_modularity_one_and_perfect_explicitness(kind):
    z = code(kind)
    assert modularity(z, GRID) == pytest.approx(1, abs=1e-12)  # a duplicate latent is still about one factor
    assert explicitness(z, GRID, z, GRID) == pytest.approx(1, abs=1e-9)


def test_a_rotation_lowers_modularity_and_keeps_explicitness():
    z = code("rotated")
    assert modularity(z, GRID) < 0.97
    assert explicitness(z, GRID, z, GRID) == pytest.approx(1, abs=1e-9)  # a linear read of two mixed latents


def test_modularity_and_explicitness_of_collapsed_and_one_latent_codes():
    assert modularity(code("collapsed"), GRID) == 0  # no latent informs: each counts 0
    assert explicitness(code("collapsed"), GRID, code("collapsed"), GRID) == pytest.approx(0.5)  # chance AUC
    assert modularity(code("one latent"), GRID) == pytest.approx(1 / 4)  # one modular latent, three silent
    one = code("one latent")
    assert explicitness(one, GRID, one, GRID) == pytest.approx((1 + 3 * 0.5) / 4)  # one factor read, three at chance


@pytest.mark.parametrize("kind", ["perfect", "duplicated", "one latent"])
def test_latents_each_fixed_by_one_factor_have_irs_one_whether_or_not_every_factor_has_a_latent(kind):
    assert irs(code(kind), GRID) == pytest.approx(1)


def test_irs_of_two_binary_factors_mixed_by_sum_and_difference_is_one_half():
    """z = (f0 + f1, f0 − f1): fixing f0 leaves each latent ±0.5 from its mean, half its largest deviation (1)."""
    f = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert irs(np.c_[f[:, 0] + f[:, 1], f[:, 0] - f[:, 1]] * 1.0, f) == pytest.approx(0.5)
    assert irs(code("rotated"), GRID) < 0.85


def test_irs_of_a_constant_code_is_zero():
    assert irs(code("collapsed"), GRID) == 0


def test_infomec_of_perfect_codes_is_one_up_to_the_neighbour_estimators_bias():
    found = infomec(code("perfect"), GRID)
    assert found["infomec_m"] == pytest.approx(1, abs=0.015)
    assert found["infomec_c"] == pytest.approx(1, abs=0.015)
    assert found["infomec_e"] == pytest.approx(1, abs=1e-3)


def test_a_duplicated_latent_keeps_infom_and_lowers_infoc_to_its_known_value():
    """Factor 0 split evenly over two of five active latents: its max/sum is 1/2, the others' 1, so InfoC is
    (mean(1/2, 1, 1, 1) − 1/5) / (1 − 1/5) = 0.84375."""
    found = infomec(code("duplicated"), GRID)
    assert found["infomec_m"] == pytest.approx(1, abs=0.015)
    assert found["infomec_c"] == pytest.approx((np.mean([0.5, 1, 1, 1]) - 1 / 5) / (1 - 1 / 5), abs=0.01)


def test_a_rotation_lowers_infom_and_infoc_and_leaves_infoe_as_it_was():
    rotated, perfect = infomec(code("rotated"), GRID), infomec(code("perfect"), GRID)
    assert rotated["infomec_m"] < 0.8
    assert rotated["infomec_c"] < 0.8
    assert rotated["infomec_e"] == pytest.approx(perfect["infomec_e"], abs=1e-3)  # unpenalised: invariant


def test_infomec_of_collapsed_and_one_latent_codes():
    assert infomec(code("collapsed"), GRID) == pytest.approx({"infomec_m": 0, "infomec_c": 0, "infomec_e": 0},
                                                             abs=1e-9)  # fmt: skip
    one = infomec(code("one latent"), GRID)
    assert "infomec_c" not in one  # one active latent: every spread over it is both even and concentrated
    assert one["infomec_m"] == pytest.approx(1, abs=0.015)
    assert one["infomec_e"] == pytest.approx(1 / 4, abs=0.01)  # factor 0 read exactly, the others not at all


def draws(n, seed):
    return scores.factor_sampler(VALUES, np.random.default_rng(seed))(n)


@pytest.mark.slow  # 3 × 200 cross-validated logistic regressions and 3 × 4 boosted trees: 5 s
def test_trees_read_perfect_codes_exactly_after_100_codes_so_their_sample_efficiency_is_one():
    train, test = draws(300, 1), draws(300, 2)
    found = sample_efficiency(train * 1.0, train, test * 1.0, test, sizes=(10, 100, 300), efficiency=(100, 300))
    assert found["downstream_gbt_100"] == found["downstream_gbt_300"] == 1
    assert found["sample_efficiency_gbt"] == 1
    assert found["downstream_lr_10"] < found["downstream_lr_300"]  # ten codes cannot show every value
    assert found["sample_efficiency"] == found["downstream_lr_100"] / found["downstream_lr_300"]


def test_a_collapsed_code_predicts_the_most_frequent_training_value_at_every_size():
    train, test = draws(100, 1), draws(500, 2)
    found = sample_efficiency(np.zeros((100, 2)), train, np.zeros((500, 2)), test, sizes=(10, 100))
    expected = np.mean([np.mean(test[:, k] == np.bincount(train[:, k]).argmax()) for k in range(len(VALUES))])
    assert found["downstream_gbt_100"] == pytest.approx(expected)


def test_a_factor_with_one_value_in_the_training_codes_is_predicted_as_that_value():
    train, test = np.zeros((10, 1), dtype=int), np.array([[0], [0], [1], [0]])
    found = sample_efficiency(np.ones((10, 2)), train, np.ones((4, 2)), test, sizes=(10,))
    assert found == {"downstream_lr_10": 0.75, "downstream_gbt_10": 0.75}


def trained_like(factors, seed=0):
    """Codes as a trained encoder's might be: factors mixed nonlinearly with noise, one near-constant latent."""
    rng = np.random.default_rng(seed)
    mixed = np.tanh(factors @ np.random.default_rng(5).normal(size=(len(VALUES), 4)) / 4)
    return np.c_[mixed + 0.05 * rng.normal(size=mixed.shape), 1e-3 * rng.normal(size=len(factors))]


@pytest.mark.slow  # both libraries' classifiers at 10, 100 and 1,000 codes: 20 s
@pytest.mark.skipif(not REFERENCE_PYTHON.exists(), reason="disentanglement_lib's venv: make reference")
def test_modularity_explicitness_irs_and_downstream_accuracies_equal_disentanglement_libs_on_the_same_codes(tmp_path):
    train, test = draws(2000, 1), draws(1000, 2)
    arrays = {"codes_train": trained_like(train), "factors_train": train, "codes_test": trained_like(test, 1),
              "factors_test": test, "sizes_lr": np.array([10, 100]),
              "sizes_gbt": np.array([10, 100])}  # fmt: skip  # each at 1,000 codes: 4 s (LR) and 6 s (trees) a side
    np.savez(tmp_path / "arrays.npz", **arrays)
    script = Path(__file__).parent / "reference" / "dlib_scores.py"
    result = subprocess.run([REFERENCE_PYTHON, script, tmp_path / "arrays.npz"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    theirs = json.loads(result.stdout)
    ours = scores.scores_from_codes(*(arrays[k] for k in scores.CODE_ARRAYS), families=["modularity", "irs"])
    ours |= sample_efficiency(*(arrays[k] for k in scores.CODE_ARRAYS), sizes=(10, 100))
    assert ours["modularity"] == pytest.approx(theirs["modularity_score"], abs=1e-12)
    assert ours["explicitness"] == pytest.approx(theirs["explicitness_score_test"], abs=1e-12)
    assert ours["irs"] == pytest.approx(theirs["IRS"], abs=1e-12)
    for n in (10, 100):
        assert ours[f"downstream_lr_{n}"] == pytest.approx(theirs[f"downstream_lr_{n}"], abs=1e-12)
        # the same trees up to their random tie-breaks (disentanglement_lib seeds none; ours are seeded)
        assert ours[f"downstream_gbt_{n}"] == pytest.approx(theirs[f"downstream_gbt_{n}"], abs=0.01)


class Codes(torch.nn.Module):
    """A stand-in encoder of the shapes grid: its posterior is given per grid image."""

    def __init__(self, mu, logvar):
        super().__init__()
        self.mu, self.logvar, self.at = torch.as_tensor(mu), torch.as_tensor(logvar), 0
        self.register_buffer("anchor", torch.zeros(()))

    @property
    def device(self):
        return self.anchor.device

    def encode(self, images):
        rows = slice(self.at, self.at + len(images))
        self.at = (self.at + len(images)) % len(self.mu)
        return type("Posterior", (), {"mu": self.mu[rows], "logvar": self.logvar[rows]})


class Grid:
    """A data module with factors, of GRID's sizes, whose images are never looked at."""

    def __init__(self):
        self.factor_sizes, self.name = VALUES, "grid"
        self.factors = [type("Factor", (), {"name": f"f{k}"}) for k in range(len(VALUES))]

    def lacks(self, need):
        return None

    def grid_images(self, batch):
        return [torch.zeros(min(batch, len(GRID) - i)) for i in range(0, len(GRID), batch)]


def scorer(**settings):
    """The evaluate suite of a small disentanglement scorer with ``settings``."""
    node = {"_target_": "betavae.metrics.disentanglement.DisentanglementScorer", "num_train": 200, "num_test": 100,
            "num_variance_estimate": 200, "batch_size": 8, **settings}  # fmt: skip
    return Suite.configured(OmegaConf.create({"disentanglement": node}), Stage.EVALUATE)


def test_one_scorer_computes_every_family_asked_for_once_and_leaves_out_the_rest():
    suite = scorer(families=["irs", "infomec"])
    assert sorted(suite.scorers) == ["infomec", "irs"]
    model = Codes(code("perfect"), np.full(GRID.shape, -2.0))
    found = suite.evaluate(model, Grid())
    assert sorted(found.metrics) == ["test/infomec_c", "test/infomec_e", "test/infomec_m", "test/irs"]
    assert found.metrics["test/irs"] == pytest.approx(1)


def test_sampled_codes_are_scored_beside_the_means_under_their_own_keys_and_arrays_on_the_same_factors():
    suite = scorer(families=["irs", "modularity"], representation=["mean", "sampled"])
    logvar = np.full(GRID.shape, math.log(0.25))
    found = suite.evaluate(Codes(code("perfect"), logvar), Grid())
    arrays = found.arrays["disentanglement"]
    assert found.metrics["test/irs"] == pytest.approx(1)
    assert found.metrics["test/irs_sampled"] < 0.9  # noise of sd 0.5 on latents one apart
    assert set(found.metrics) == {"test/irs", "test/modularity", "test/explicitness", "test/irs_sampled",
                                  "test/modularity_sampled", "test/explicitness_sampled"}  # fmt: skip
    means = code("perfect")[np.ravel_multi_index(tuple(arrays["factors_train"].T), VALUES)]
    assert np.array_equal(arrays["codes_train"], means)
    noise = arrays["codes_train_sampled"] - means
    assert 0.45 < noise.std() < 0.55
    again = scorer(families=["irs"], representation="sampled").evaluate(Codes(code("perfect"), logvar), Grid())
    assert set(again.metrics) == {"test/irs_sampled"}
    assert np.array_equal(again.arrays["disentanglement"]["codes_train_sampled"], arrays["codes_train_sampled"])


def scorer_node():
    return {"_target_": "betavae.metrics.disentanglement.DisentanglementScorer", "num_train": 200, "num_test": 100,
            "num_variance_estimate": 200, "batch_size": 8, "families": ["irs", "modularity"]}  # fmt: skip


def test_a_code_with_one_latent_left_by_infomecs_pruning_has_no_infoc_and_a_note_saying_why():
    found = scorer(families=["infomec"]).evaluate(Codes(code("one latent"), np.zeros(GRID.shape)), Grid())
    assert "test/infomec_c" not in found.metrics
    assert scores.infoc_note() in found.notes
    assert found.notes[0].startswith("disentanglement scores of a code with one active latent of 4")
