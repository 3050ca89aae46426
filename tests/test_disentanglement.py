"""The disentanglement scores against cases with known answers, and against disentanglement_lib's definitions as
nmichlo/disent ports them (run on the same codes); when the family is left out or refused."""

import functools
import math

import numpy as np
import pytest

from betavae.base.errors import ConfigError
from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.metrics import disentanglement as scores
from betavae.metrics.suite import Suite

VALUES = [3, 4, 5, 6]  # factor sizes of the known-answer cases: small, so the boosted trees fit in seconds
GRID = np.stack(np.meshgrid(*[np.arange(v) for v in VALUES], indexing="ij"), -1).reshape(-1, len(VALUES))
NOISE = np.random.default_rng(9).normal(size=(len(GRID), 6))  # a fixed code per grid point, unrelated to it


def index(factors):
    return np.ravel_multi_index(tuple(factors.T), VALUES)


CODES = {  # code function of factor combinations [n, K] → codes [n, D]
    "identity": lambda f: f.astype(float),
    "permuted and rescaled": lambda f: f[:, [2, 0, 3, 1]] * np.array([3.0, -0.5, 2.0, 10.0]) + 7.0,
    "constant": lambda f: np.zeros((len(f), 4)),
    "random": lambda f: NOISE[index(f)],
    "one factor in two latents": lambda f: np.concatenate([f, f[:, :1]], axis=1).astype(float),
    "two factors in one latent": lambda f: np.stack([f[:, 0] * VALUES[1] + f[:, 1], f[:, 2], f[:, 3]], 1) * 1.0,
}


@functools.cache
def code_scores(kind, n_train=1000, n_test=500):
    """MIG, DCI and SAP of the codes ``kind`` gives factor combinations drawn at random (seeded), once."""
    sample = scores.factor_sampler(VALUES, np.random.default_rng(1))
    train, test = sample(n_train), sample(n_test)
    return scores.scores_from_codes(CODES[kind](train), train, CODES[kind](test), test, families=["disentanglement"])


def sampled_scores(kind):
    """The FactorVAE and BetaVAE scores of the codes ``kind`` gives, small sample sizes."""
    rng = np.random.default_rng(2)
    sample = scores.factor_sampler(VALUES, rng)
    sizes = {"batch_size": 16, "num_train": 1000, "num_eval": 500}
    return (scores.factorvae_score(CODES[kind], sample, len(VALUES), rng, **sizes, num_variance_estimate=1000),
            scores.betavae_score(CODES[kind], sample, len(VALUES), rng, **sizes))  # fmt: skip


@pytest.mark.parametrize("kind", ["identity", "permuted and rescaled"])
def test_codes_that_are_the_factors_score_one_on_every_score_that_can_reach_it(kind):
    found = code_scores(kind)
    assert found["mig"] > 0.97  # not exactly 1: the MI of independent factors estimated from 1,000 draws is > 0
    assert found["dci_disentanglement"] > 0.99
    assert found["dci_completeness"] > 0.99
    assert found["dci_informativeness"] > 0.99
    assert sampled_scores(kind) == (1.0, 1.0)


def test_sap_of_perfect_codes_is_far_from_one_on_factors_of_many_values():
    """A linear SVM on one dimension draws one threshold per class against the rest: it separates two values,
    not six, so SAP stays low even where a dimension is the factor; with two values it reaches 1 − chance."""
    assert code_scores("identity")["sap"] < 0.5
    sample = scores.factor_sampler([2, 2, 2], np.random.default_rng(1))
    train, test = sample(1000), sample(500)
    binary = scores.sap(train * 1.0, train, test * 1.0, test)
    assert binary == pytest.approx(0.5, abs=0.05)  # the best dimension is always right, the second at chance


def test_constant_codes_score_zero_and_chance_where_a_classifier_guesses():
    found = code_scores("constant")
    assert found["mig"] == 0
    assert found["dci_disentanglement"] == pytest.approx(0, abs=1e-9)
    assert found["dci_completeness"] == pytest.approx(0, abs=1e-9)
    assert found["sap"] == 0
    assert found["dci_informativeness"] < 0.4  # the trees can only guess each factor's most frequent value
    factorvae, betavae = sampled_scores("constant")
    assert factorvae == 0  # no dimension varies: none takes part
    assert betavae == pytest.approx(1 / len(VALUES), abs=0.06)  # the regression guesses: chance


@pytest.mark.slow  # trees fitted to noise grow deep: 2 s
def test_random_codes_score_near_chance():
    found = code_scores("random")
    assert found["mig"] < 0.02
    assert found["sap"] < 0.02
    assert found["dci_completeness"] < 0.1
    assert found["dci_disentanglement"] < 0.25  # trees fitted to noise spread their importance at random
    factorvae, betavae = sampled_scores("random")
    assert factorvae < 1 / len(VALUES) + 0.15
    assert betavae < 1 / len(VALUES) + 0.1


def test_two_latents_holding_one_factor_lower_mig_and_completeness():
    found, perfect = code_scores("one factor in two latents"), code_scores("identity")
    assert found["mig"] < perfect["mig"] - 0.2  # factor 0's gap is 0: its top two latents are equal
    assert found["dci_completeness"] < perfect["dci_completeness"] - 0.05
    assert found["dci_disentanglement"] > 0.99  # each latent still holds one factor


def test_one_latent_holding_two_factors_lowers_dci_disentanglement():
    found, perfect = code_scores("two factors in one latent"), code_scores("identity")
    assert found["dci_disentanglement"] < perfect["dci_disentanglement"] - 0.1
    assert found["dci_informativeness"] > 0.99  # the codes still determine every factor


def test_dci_of_a_known_importance_matrix():
    """disentanglement_lib's own known answers for the importance matrix."""
    diagonal = np.diag(np.full(5, 5.0))
    assert scores.dci_disentanglement(diagonal) == pytest.approx(1)
    assert scores.dci_completeness(np.vstack([diagonal, diagonal])) == pytest.approx(1 - math.log(2) / math.log(10))
    assert scores.dci_disentanglement(np.hstack([diagonal, diagonal])) == pytest.approx(1 - math.log(2) / math.log(10))
    assert scores.dci_disentanglement(np.zeros((10, 10))) == pytest.approx(0, abs=1e-9)


@pytest.mark.slow  # the reference's trees and ours: 5 s
@pytest.mark.parametrize("kind", ["permuted and rescaled", "one factor in two latents"])
def test_mig_dci_and_sap_equal_disents_port_of_disentanglement_lib_on_the_same_codes(kind):
    disent = pytest.importorskip("disent.metrics", reason="the reference needs the dev extra's disent")
    sample = scores.factor_sampler(VALUES, np.random.default_rng(1))
    train, test = sample(2000), sample(1000)
    codes_train, codes_test = CODES[kind](train), CODES[kind](test)
    ours = scores.scores_from_codes(codes_train, train, codes_test, test, families=["disentanglement"])
    mig = disent._mig._compute_mig(codes_train.T, train.T)["mig.discrete_score"]
    dci = disent._dci._compute_dci(codes_train.T, train.T, codes_test.T, test.T)
    sap = disent._sap._compute_sap(codes_train.T, train.T, codes_test.T, test.T, continuous_factors=False)
    assert ours["mig"] == pytest.approx(mig, abs=1e-12)
    assert ours["sap"] == pytest.approx(sap["sap.score"], abs=1e-12)
    assert ours["dci_informativeness"] == pytest.approx(dci["dci.informativeness_test"], abs=0.01)
    # the same trees up to their random tie-breaks (disentanglement_lib seeds none; ours are seeded)
    assert ours["dci_disentanglement"] == pytest.approx(dci["dci.disentanglement"], abs=0.01)
    assert ours["dci_completeness"] == pytest.approx(dci["dci.completeness"], abs=0.01)


def test_a_fixed_factor_batch_holds_its_factor_and_draws_the_others():
    rng = np.random.default_rng(3)
    fixed, batches = scores.fixed_factor_batches(scores.factor_sampler(VALUES, rng), 200, 32, len(VALUES), rng)
    for k, batch in zip(fixed, batches, strict=True):
        assert len(set(batch[:, k])) == 1
    varied = [len(set(batch[:, j])) > 1 for k, batch in zip(fixed, batches, strict=True) for j in range(4) if j != k]
    assert np.mean(varied) > 0.95


def test_data_without_factors_is_left_out_saying_why_and_refused_in_one_line_when_the_scores_are_insisted_on():
    unlabelled = FashionMNISTDataModule()
    assert Suite({"disentanglement": scores.DisentanglementScorer()}).announce(unlabelled) == [
        "No disentanglement scores: data=fashion_mnist has no ground-truth factors of variation"]  # fmt: skip
    with pytest.raises(ConfigError) as refused:
        Suite({"disentanglement": scores.DisentanglementScorer(compute=True)}).skipped(unlabelled)
    assert str(refused.value) == ("disentanglement.compute=true: data=fashion_mnist has no ground-truth factors of "
                                  "variation to score against (data=shapes has)")  # fmt: skip


def test_compute_false_turns_the_scores_off():
    from omegaconf import OmegaConf

    node = OmegaConf.create({"_target_": "betavae.metrics.disentanglement.DisentanglementScorer", "compute": False})
    assert scores.DisentanglementScorer.configured(node) is None


def test_a_collapsed_latent_that_still_orders_a_factor_scores_nothing_on_mig_sap_and_dci():
    """A near-constant mean (variance far below 0.01) that rises with factor 0: cut into bins over its own tiny
    range it looks informative; the scores count it as the inactive latent it is."""
    sample = scores.factor_sampler(VALUES, np.random.default_rng(1))
    train, test = sample(1000), sample(500)
    collapsed = lambda f: 1e-3 * f[:, :1] + np.random.default_rng(2).normal(scale=1e-4, size=(len(f), 1))  # noqa: E731
    found = scores.scores_from_codes(collapsed(train), train, collapsed(test), test, families=["disentanglement"])
    assert scores.factor_information(collapsed(train), train)[0, 0] > 0.9  # what MIG read before
    assert found["mig"] == 0
    assert found["sap"] == 0
    assert found["dci_disentanglement"] == pytest.approx(0, abs=1e-9)
    assert found["dci_completeness"] == pytest.approx(0, abs=1e-9)
    assert scores.score_notes(collapsed(train))[0].startswith(
        "disentanglement scores of a code with no active latent (all 1 have Var μ ≤ 0.01)")  # fmt: skip


def test_one_active_latent_scores_its_own_information_with_a_note_saying_there_is_no_gap():
    sample = scores.factor_sampler(VALUES, np.random.default_rng(1))
    train, test = sample(1000), sample(500)
    found = scores.scores_from_codes(train[:, :1] * 1.0, train, test[:, :1] * 1.0, test, families=["disentanglement"])
    assert found["mig"] == pytest.approx(1 / len(VALUES), abs=0.02)  # factor 0 alone, in its one latent
    assert 0 < found["sap"] < 1 / len(VALUES)  # its accuracy above a guess, for factor 0 alone
    assert found["dci_completeness"] > 0.99  # one latent cannot spread a factor: defined, not null
    assert (
        "one active latent of 1: MIG and SAP have no second latent to subtract" in scores.score_notes(train[:, :1])[0]
    )
    assert scores.score_notes(train * 1.0) == []
