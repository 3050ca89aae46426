"""Disentanglement against known factors of variation: MIG, DCI and SAP as plain functions of codes and factors,
the FactorVAE and BetaVAE scores as functions of a code function and a factor sampler. Definitions and default
settings are disentanglement_lib's (Locatello et al. 2019, its unsupervised_study_v1); docs/evaluation.md says
where they differ and what each can reach. Codes are [n, D] floats, factors [n, K] integer indices."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch
from omegaconf import DictConfig

from betavae.base.config import is_int, is_number, require
from betavae.base.errors import ConfigError
from betavae.base.plotting import heatmap
from betavae.data.contract import ImageData
from betavae.metrics import registry
from betavae.metrics.downstream import sample_efficiency, unreached
from betavae.metrics.infomec import infomec
from betavae.metrics.information import (
    ACTIVE_VARIANCE,
    active_latents,
    factor_information,
)
from betavae.metrics.irs import irs
from betavae.metrics.modularity import explicitness, modularity
from betavae.metrics.registry import SAMPLED
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import VAE, encode_all

log = logging.getLogger(__name__)
CODE_ARRAYS = ("codes_train", "factors_train", "codes_test", "factors_test")  # disentanglement.npz, in this order
CodesOf = Callable[[np.ndarray], np.ndarray]  # factor combinations [n, K] → codes [n, D] of their images


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018): per factor, the MI of its most informative code dimension less
    that of the second, over the factor's entropy; the mean over factors. 1: each factor in one dimension alone.
    Inactive latents (`active_latents`) count as carrying no information, so is a missing second latent: with one
    active latent MIG is that latent's own information, with none it is 0."""
    informs = factor_information(codes, factors, bins) * active_latents(codes)[:, None]
    m = np.sort(informs, axis=0)[::-1]
    second = m[1] if len(m) > 1 else np.zeros(m.shape[1])
    return float(np.mean(m[0] - second))


def importances(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """DCI's importance matrix [D, K], each column the impurity-based feature importances of gradient-boosted
    trees that predict factor k from the codes (disentanglement_lib's GradientBoostingClassifier(): 100 depth-3
    trees, rate 0.1), and the trees' test accuracy per factor [K] (downstream sample efficiency's trees after
    all training codes). Slow (about 2 minutes for 10,000 codes and 51 factor
    values on one core), and kept: LightGBM's split-gain importances, 40 times faster, scored trained codes very
    differently (docs/evaluation.md)."""
    from sklearn.ensemble import GradientBoostingClassifier

    matrix, accuracy = np.zeros((codes_train.shape[1], factors_train.shape[1])), []
    for k in range(factors_train.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(codes_train, factors_train[:, k])
        matrix[:, k] = np.abs(model.feature_importances_)
        accuracy.append(np.mean(model.predict(codes_test) == factors_test[:, k]))
    return matrix, np.array(accuracy)


def dci_disentanglement(matrix: np.ndarray) -> float:
    """DCI disentanglement (Eastwood & Williams 2018): per code dimension, 1 − the entropy (base K) of its
    importances over the factors, weighted by its share of all importance."""
    per_code = 1.0 - scipy.stats.entropy(matrix.T + 1e-11, base=matrix.shape[1])
    weights = matrix if matrix.sum() else np.ones_like(matrix)
    return float(np.sum(per_code * weights.sum(axis=1) / weights.sum()))


def dci_completeness(matrix: np.ndarray) -> float:
    """DCI completeness: per factor, 1 − the entropy (base D, at least 2: one latent cannot spread a factor, so its
    factors are complete) of its importances over the code dimensions, weighted by its share of all importance;
    0 where no latent has any importance."""
    if not matrix.sum():
        return 0.0
    per_factor = 1.0 - scipy.stats.entropy(matrix + 1e-11, base=max(matrix.shape[0], 2))
    weights = matrix if matrix.sum() else np.ones_like(matrix)
    return float(np.sum(per_factor * weights.sum(axis=0) / weights.sum()))


def dci(
    codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray, seed: int = 0
) -> dict[str, float]:
    """DCI's disentanglement, completeness and informativeness (the trees' mean test accuracy), trees fitted on
    the training codes; inactive latents' importance counted 0 (with none active, disentanglement and completeness
    are 0)."""
    return dci_of(*importances(codes_train, factors_train, codes_test, factors_test, seed), codes_train)


def dci_of(matrix: np.ndarray, accuracy: np.ndarray, codes_train: np.ndarray) -> dict[str, float]:
    """DCI from the trees' importance matrix [D, K] and per-factor test accuracies [K]."""
    matrix = matrix * active_latents(codes_train)[:, None]  # the trees' splits on a near-constant latent are noise
    return {
        "disentanglement": dci_disentanglement(matrix),
        "completeness": dci_completeness(matrix),
        "informativeness": float(np.mean(accuracy)),
    }


def sap(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray, factors_test: np.ndarray) -> float:
    """Separated attribute predictability (Kumar et al. 2018), discrete factors: per factor, the test accuracy of
    a linear SVM on each code dimension alone; the mean over factors of the best less the second best. A
    linear threshold separates two classes, not many, so a factor of many values scores low even when one
    dimension holds it exactly. An inactive latent, and a missing second latent, score what a guess of the most
    frequent value scores: with one active latent SAP is its accuracy above that guess, with none it is 0."""
    from sklearn.svm import LinearSVC

    scores = np.zeros((codes_train.shape[1], factors_train.shape[1]))
    for d in range(codes_train.shape[1]):
        for k in range(factors_train.shape[1]):
            svm = LinearSVC(C=0.01, class_weight="balanced").fit(codes_train[:, d : d + 1], factors_train[:, k])
            scores[d, k] = np.mean(svm.predict(codes_test[:, d : d + 1]) == factors_test[:, k])
    chance = np.array([np.unique(factors_test[:, k], return_counts=True)[1].max() / len(factors_test)
                       for k in range(factors_test.shape[1])])  # fmt: skip  # a guess that reads no latent
    scores[~active_latents(codes_train)] = chance
    top = np.sort(np.vstack([scores, chance]) if len(scores) == 1 else scores, axis=0)  # a missing second: a guess
    return float(np.mean(top[-1] - top[-2]))


def fixed_factor_batches(
    sample: Callable[[int], np.ndarray], points: int, batch_size: int, num_factors: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``points``: a random factor k and a batch of factor combinations [batch_size, K] drawn at
    random with factor k fixed to one drawn value. Returns (k [points], batches [points, batch_size, K])."""
    fixed = rng.integers(num_factors, size=points)
    batches = sample(points * batch_size).reshape(points, batch_size, -1)
    rows = np.arange(points)
    batches[rows, :, fixed] = batches[rows, :1, fixed]
    return fixed, batches


def factorvae_score(
    codes_of: CodesOf,
    sample: Callable[[int], np.ndarray],
    num_factors: int,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
) -> float:
    """The FactorVAE score (Kim & Mnih 2018): for batches with one factor fixed, the code dimension of least
    variance (divided by its variance over all data); a majority vote learns which factor each dimension
    signals, and the score is its accuracy on new batches. Dimensions whose sd over all data is below
    ``prune_threshold`` (collapsed) take no part; with none left the score is 0."""
    scale = np.var(codes_of(sample(num_variance_estimate)), axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(scale) >= prune_threshold)
    if not len(active):
        return 0.0

    def votes(points: int) -> np.ndarray:
        fixed, batches = fixed_factor_batches(sample, points, batch_size, num_factors, rng)
        codes = codes_of(batches.reshape(-1, num_factors)).reshape(points, batch_size, -1)[:, :, active]
        least = np.argmin(np.var(codes, axis=1, ddof=1) / scale[active], axis=1)
        counts = np.zeros((num_factors, len(active)))
        np.add.at(counts, (fixed, least), 1)
        return counts

    trained = votes(num_train).argmax(axis=0)  # the factor each active dimension votes for
    tested = votes(num_eval)
    return float(tested[trained, np.arange(len(active))].sum() / tested.sum())


def betavae_score(
    codes_of: CodesOf,
    sample: Callable[[int], np.ndarray],
    num_factors: int,
    rng: np.random.Generator,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
) -> float:
    """The BetaVAE score (Higgins et al. 2017): for pairs of images sharing one factor, the mean over a batch of
    |z₁ − z₂| per dimension; a logistic regression predicts the shared factor from it, and the score is its
    test accuracy. Chance is 1/K, which constant codes get."""
    from sklearn.linear_model import LogisticRegression

    def features(points: int) -> tuple[np.ndarray, np.ndarray]:
        fixed = rng.integers(num_factors, size=points)
        first, second = (sample(points * batch_size).reshape(points, batch_size, -1) for _ in range(2))
        rows = np.arange(points)
        second[rows, :, fixed] = first[rows, :, fixed]  # each pair shares its point's factor
        codes = [codes_of(f.reshape(-1, num_factors)).reshape(points, batch_size, -1) for f in (first, second)]
        return np.abs(codes[0] - codes[1]).mean(axis=1), fixed

    train_x, train_y = features(num_train)
    model = LogisticRegression(max_iter=1000, random_state=0).fit(train_x, train_y)
    return float(model.score(*features(num_eval)))


def a_code(representation: str) -> str:
    """How a note names the code it is about: "a code" (posterior means), "a sampled code"."""
    return "a code" if representation == "mean" else f"a {representation} code"


def score_notes(codes: np.ndarray, representation: str = "mean") -> list[str]:
    """The one-line reasons why a code's scores do not compare with others': no active latent, or one."""
    active, dims, code = int(active_latents(codes).sum()), codes.shape[1], a_code(representation)
    if active == 0:
        return [f"disentanglement scores of {code} with no active latent (all {dims} have Var μ ≤ {ACTIVE_VARIANCE}): "
                "it carries nothing; MIG, SAP, DCI disentanglement and completeness are 0"]  # fmt: skip
    if active == 1:
        return [f"disentanglement scores of {code} with one active latent of {dims}: MIG and SAP have no second "
                "latent to subtract, so they are that latent's own information, not a gap between latents; IRS asks "
                "each latent to hold one factor, not each factor a latent, so it can reach 1"]  # fmt: skip
    return []


def infoc_note(representation: str = "mean") -> str:
    """The one line saying why a code's InfoC is left out (one latent active by InfoMEC's own rule)."""
    return (f"InfoC of {a_code(representation)} with one latent whose range is above the largest over 20 "
            "(InfoMEC's pruning): left out, as every spread over one latent is both even and concentrated")  # fmt: skip


CODE_FAMILIES = tuple(f.name for f in registry.families() if f.settings == registry.FACTORS)  # what this scores
REPRESENTATIONS = {"mean": "", "sampled": SAMPLED}  # what a code is, and the suffix of its keys and arrays


def scores_from_codes(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    bins: int = 20,
    seed: int = 0,
    families: Sequence[str] = CODE_FAMILIES,
) -> dict[str, float]:
    """Every score of ``families`` that is a function of codes and factors, as logged: MIG (on the training
    codes), DCI and SAP (fitted on training codes, scored on test codes); modularity (training codes) and
    explicitness; IRS and InfoMEC (training codes); the downstream accuracies and sample efficiency. What
    disentanglement.npz's arrays give again (the FactorVAE and BetaVAE scores need the model)."""
    arrays = (codes_train, factors_train, codes_test, factors_test)
    found, trees = {}, None
    if "disentanglement" in families:
        matrix, trees = importances(*arrays, seed)
        found["mig"] = mig(codes_train, factors_train, bins)
        found |= {f"dci_{name}": value for name, value in dci_of(matrix, trees, codes_train).items()}
        found["sap"] = sap(*arrays)
    if "modularity" in families:
        found |= {"modularity": modularity(codes_train, factors_train, bins), "explicitness": explicitness(*arrays)}
    if "irs" in families:
        found["irs"] = irs(codes_train, factors_train, bins)
    if "infomec" in families:
        found |= infomec(codes_train, factors_train, seed)
    if "sample_efficiency" in families:
        found |= sample_efficiency(*arrays, seed, known=None if trees is None else {"gbt": trees})
    return found


def factor_sampler(num_values: Sequence[int], rng: np.random.Generator) -> Callable[[int], np.ndarray]:
    """Draws of n factor combinations [n, K], each factor uniform over its values, independently."""
    return lambda n: np.stack([rng.integers(v, size=n) for v in num_values], axis=1)


class DisentanglementScorer(Scorer):
    """The scores against known factors (`data=shapes`, the benchmark files): the registry's `disentanglement`,
    `modularity`, `irs`, `infomec` and `sample_efficiency` families, those of ``families``, from the codes of
    every image of the factor grid: each score draws its factor combinations from ``seed`` and looks their codes
    up. ``representation``: the codes are posterior means ("mean"), one draw from each image's posterior
    ("sampled", drawn from ``seed``; keys and arrays end in _sampled), or both (a list). ``compute``: "auto"
    scores data with factors and skips the rest; true refuses data without factors; false never scores. Sample
    sizes are disentanglement_lib's: ``num_train`` codes to fit on (and FactorVAE and BetaVAE points to train
    on), ``num_test`` to score on; ``batch_size`` images per FactorVAE vote and BetaVAE point."""

    def __init__(
        self,
        compute: bool | str = "auto",
        seed: int = 0,
        num_train: int = 10_000,
        num_test: int = 5_000,
        bins: int = 20,
        batch_size: int = 64,
        num_variance_estimate: int = 10_000,
        prune_threshold: float = 0.05,
        families: Sequence[str] = CODE_FAMILIES,
        representation: str | Sequence[str] = "mean",
    ) -> None:
        require(compute in ("auto", True, False), "compute", compute, "must be auto, true or false")
        require(is_int(seed, 0), "seed", seed, "must be an integer >= 0")
        for name, value in (
            ("num_train", num_train),
            ("num_test", num_test),
            ("bins", bins),
            ("batch_size", batch_size),
            ("num_variance_estimate", num_variance_estimate),
        ):
            require(is_int(value, 2), name, value, "must be an integer >= 2")
        require(is_number(prune_threshold) and prune_threshold >= 0, "prune_threshold", prune_threshold, "must be >= 0")
        families = [families] if isinstance(families, str) else list(families)
        require(families and set(families) <= set(CODE_FAMILIES) and len(set(families)) == len(families), "families",
                families, f"must be a list of distinct families of {', '.join(CODE_FAMILIES)}")  # fmt: skip
        kinds = [representation] if isinstance(representation, str) else list(representation)
        require(kinds and set(kinds) <= set(REPRESENTATIONS) and len(set(kinds)) == len(kinds), "representation",
                representation, "must be mean, sampled or [mean, sampled]")  # fmt: skip
        self.compute, self.seed, self.num_train, self.num_test, self.bins = compute, seed, num_train, num_test, bins
        self.batch_size = batch_size
        self.num_variance_estimate, self.prune_threshold = num_variance_estimate, prune_threshold
        self.families = [f for f in CODE_FAMILIES if f in families]
        self.representation = [r for r in REPRESENTATIONS if r in kinds]

    @classmethod
    def configured(cls, node: DictConfig | None) -> DisentanglementScorer | None:
        """The scorer of ``disentanglement``'s settings; None with ``compute: false``."""
        scorer = super().configured(node)
        return None if scorer is None or scorer.compute is False else scorer

    def computes(self, family: str) -> bool:
        """Whether ``families`` asks for this registry family."""
        return family in self.families

    def unfit(self, data: ImageData) -> str | None:
        """Refuse, in one line, data without factors when ``compute`` insists on the scores; else nothing: the
        family needs factors, which the suite checks."""
        if self.compute is True and data.factors is None:
            raise ConfigError(f"disentanglement.compute=true: data={data.name} has no ground-truth factors of "
                              "variation to score against (data=shapes has)")  # fmt: skip
        return None

    def settings(self) -> dict[str, object]:
        """The settings the scores were computed with, recorded beside them."""
        return {k: v for k, v in vars(self).items() if k != "compute"}

    def scores(self, model: object, data: ImageData) -> Scores:
        """The scores of each representation, their code-based inputs and the latent × factor mutual information
        of the first, against the factors that take two values or more (one of a single value has nothing to
        predict: a small file's)."""
        grid_sizes = data.factor_sizes
        varying = [k for k, size in enumerate(grid_sizes) if size > 1]
        num_values = [grid_sizes[k] for k in varying]
        mu, logvar = grid_posteriors(model, data)
        metrics, arrays, notes = {}, {}, []
        for kind in self.representation:
            suffix = REPRESENTATIONS[kind]
            grid = mu if kind == "mean" else sampled(mu, logvar, self.seed)
            found, codes = self.scores_of(grid, grid_sizes, varying, num_values)
            metrics |= {name + suffix: value for name, value in found.items()}
            arrays |= {key if key.startswith("factors") else key + suffix: value for key, value in codes.items()}
            notes += score_notes(codes["codes_train"], kind)
            if "infomec" in self.families and "infomec_c" not in found:
                notes.append(infoc_note(kind))
        if "sample_efficiency" in self.families and (line := unreached(self.num_train)):
            log.info(line)
        first = REPRESENTATIONS[self.representation[0]]
        informs = factor_information(arrays["codes_train" + first], arrays["factors_train"], self.bins)
        names = [data.factors[k].name for k in varying]
        arrays |= {"factor_names": np.array(names), "settings": np.array(json.dumps(self.settings()))}
        return Scores(metrics, arrays, informs, names, notes)

    def scores_of(
        self, grid_codes: np.ndarray, grid_sizes: Sequence[int], varying: list[int], num_values: list[int]
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """The scores of one representation of the grid [N, D], with the factors and codes they read
        (CODE_ARRAYS); the same factor draws for every representation (a fresh generator from ``seed``)."""
        rng = np.random.default_rng(self.seed)
        sample = factor_sampler(num_values, rng)

        def codes_of(factors: np.ndarray) -> np.ndarray:
            full = np.zeros((len(factors), len(grid_sizes)), dtype=np.int64)
            full[:, varying] = factors
            return grid_codes[np.ravel_multi_index(tuple(full.T), grid_sizes)]

        arrays = {"factors_train": sample(self.num_train), "factors_test": sample(self.num_test)}
        arrays |= {"codes_train": codes_of(arrays["factors_train"]), "codes_test": codes_of(arrays["factors_test"])}
        metrics = scores_from_codes(*(arrays[key] for key in CODE_ARRAYS), self.bins, self.seed, self.families)
        if "disentanglement" in self.families:
            k, sizes = len(num_values), (self.batch_size, self.num_train, self.num_test)
            metrics["factorvae_score"] = factorvae_score(codes_of, sample, k, rng, *sizes, self.num_variance_estimate,
                                                         self.prune_threshold)  # fmt: skip
            metrics["betavae_score"] = betavae_score(codes_of, sample, k, rng, *sizes)
        return metrics, arrays

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        """The scores, their inputs as disentanglement.npz, and figures/factor_information.png."""
        found = self.scores(model, data)
        chart = heatmap(found.normalized_mi, found.factor_names, [f"z{d}" for d in range(len(found.normalized_mi))],
                        f"{label} · I(z_d; factor) / H(factor)")  # fmt: skip
        return Evaluation(found.metrics, {"disentanglement": found.arrays}, {"factor_information": chart},
                          settings={"disentanglement": self.settings()}, notes=found.notes)  # fmt: skip


@dataclass
class Scores:
    """What `DisentanglementScorer.scores` gives: the scores by name (mig, dci_*, sap, factorvae_score,
    betavae_score, modularity, ..., each + _sampled on sampled codes), the inputs of the code-based ones
    (factors_train [n, K], factors_test, and per representation codes_train [n, D] and codes_test, + _sampled;
    with factor_names and the settings as JSON: disentanglement.npz), the latent × factor mutual information over
    each factor's entropy [D, K] of the first representation, the factor names, the notes on the codes."""

    metrics: dict[str, float]
    arrays: dict[str, np.ndarray]
    normalized_mi: np.ndarray
    factor_names: list[str]
    notes: list[str]


def grid_posteriors(model: VAE, data: ImageData, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and log-variances [N, D] of every image of the data's factor grid, in grid order, encoded in
    batches on the model's device."""
    parts = [encode_all(model, chunk, batch) for chunk in data.grid_images(batch)]
    mu, logvar = (torch.cat([getattr(p, name).float().cpu() for p in parts]) for name in ("mu", "logvar"))
    return mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)


def grid_means(model: VAE, data: ImageData, batch: int = 4096) -> np.ndarray:
    """Posterior means [N, D] of every image of the data's factor grid, in grid order."""
    return grid_posteriors(model, data, batch)[0]


def sampled(mu: np.ndarray, logvar: np.ndarray, seed: int) -> np.ndarray:
    """One draw z = μ + σ·ε per image [N, D], ε from ``seed`` (on the CPU: the same draw on every device)."""
    return mu + np.exp(0.5 * logvar) * np.random.default_rng([seed, 1]).standard_normal(mu.shape)
