"""Every metric betavae reports, declared once: its key as logged and written, its label and decimals in the
summaries, whether sweeps compare it by per-seed differences, the panel of tradeoff.png it is drawn in, what data
it needs, and which scorer computes it where. The summaries, the loggers, the test pass and evaluate read this
registry; no metric key is listed anywhere else.

A family is one scorer's metrics. A per-run family is computed for one model (`betavae.metrics.suite` runs it, at the
test pass and in evaluate); an across-runs family is computed by the sweep summary from all of a sweep's jobs.
docs/configuration.md (Layout) says what a contributor touches to add either. This module imports nothing
heavy: the summaries read it without importing torch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum


class Scope(str, Enum):
    """What a family is computed from: one run's model, or every job of a sweep."""

    PER_RUN = "per run"
    ACROSS_RUNS = "across runs"


class Stage(str, Enum):
    """Where a family may be computed: training's test pass or `python -m betavae.evaluate` (per run), or a
    sweep's summary (across runs)."""

    TEST = "test"
    EVALUATE = "evaluate"
    SUMMARY = "summary"


@dataclass(frozen=True)
class Metric:
    """One number: ``key`` as logged and written (metrics.json, evaluation.json, every logger); ``label`` its
    summary column; ``paired``: sweeps compare it between groups by per-seed differences; ``column``: the
    summary shows it; ``legend``: its line's label in its family's panel (None: not drawn); ``spread``: the key
    of its sd within one run, the error bar where a group has one seed (FID over sample draws)."""

    key: str
    label: str
    decimals: int = 2
    paired: bool = False
    column: bool = True
    legend: str | None = None
    spread: str | None = None

    @property
    def name(self) -> str:
        """The key without its split ("test/mig" → "mig"): what a scorer returns."""
        return self.key.split("/", 1)[-1]


@dataclass(frozen=True)
class Panel:
    """A panel of tradeoff.png: its family's metrics that have a legend, against the swept key."""

    title: str
    ylabel: str


@dataclass(frozen=True)
class Family:
    """One scorer's metrics. ``title`` names it in the one line saying it was left out; ``needs``: what the data
    must offer (`betavae.data.contract.ImageData.lacks`: "classes", "factors", "fid_features"); ``settings``: per
    stage, the config key its scorer is built from (None: built with no settings; a stage absent: not computed
    there; the key absent from the config: off). The scorer classes are imported by what runs them
    (`betavae.metrics.suite.SCORERS` and `SWEEP_SCORERS`); a family without one is computed by
    training itself, in its test loop or its record."""

    name: str
    title: str
    metrics: tuple[Metric, ...]
    scope: Scope = Scope.PER_RUN
    needs: tuple[str, ...] = ()
    settings: Mapping[Stage, str | None] = field(default_factory=dict)
    panel: Panel | None = None

    def keys(self) -> tuple[str, ...]:
        """Every key the family's scorer may log or write."""
        return tuple(m.key for m in self.metrics)


EVERYWHERE = {Stage.TEST: None, Stage.EVALUATE: None}  # a family with no settings, computed wherever a model is scored
RATE, DISTORTION = "test/kl", "test/recon"  # the rate–distortion plane of tradeoff.png
LOSS = "test/loss"  # the tested objective: what a job returns to Hydra's sweepers
TRAIN_LOSS, VAL_LOSS = "train/loss", "val/loss"  # each epoch's mean objective; val/loss picks the best checkpoint

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (its name and keys new), so every summary, logger, test pass and evaluate sees it."""
    taken = {key for f in FAMILIES.values() for key in f.keys()}  # noqa: SIM118 (Family.keys: its metric keys)
    if family.name in FAMILIES or taken & set(family.keys()):
        raise ValueError(f"metric family {family.name!r}: its name or a key of it is registered already")
    FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (a test's toy metric)."""
    FAMILIES.pop(name, None)


def families(scope: Scope | None = None) -> list[Family]:
    """The registered families in order (summary columns and panels follow it), of one scope if given."""
    return [f for f in FAMILIES.values() if scope is None or f.scope is scope]


def metrics() -> list[Metric]:
    """Every registered metric, in family order."""
    return [m for f in families() for m in f.metrics]


def metric(key: str) -> Metric:
    """The registered metric of ``key``; KeyError if none is."""
    found = {m.key: m for m in metrics()}
    return found[key]


def columns() -> list[Metric]:
    """The metrics a sweep summary shows, in order."""
    return [m for m in metrics() if m.column]


def paired() -> list[Metric]:
    """The metrics sweeps compare between groups by per-seed differences."""
    return [m for m in metrics() if m.paired]


def panels() -> list[tuple[Panel, dict[str, str]]]:
    """tradeoff.png's panels against the swept key: each panel with its metrics' keys and legends."""
    merged: dict[Panel, dict[str, str]] = {}
    for f in families():
        if f.panel:  # families that name one panel share it (the more disentanglement scores)
            merged.setdefault(f.panel, {}).update({m.key: m.legend for m in f.metrics if m.legend})
    return list(merged.items())


def scores(values: Mapping[str, object]) -> dict[str, float]:
    """The registered metrics among ``values`` (a result file's or a logger's), as numbers; the rest dropped."""
    known = {m.key for m in metrics()}
    return {k: v for k, v in values.items() if k in known and isinstance(v, int | float) and not isinstance(v, bool)}


def settings_keys(scope: Scope | None = None) -> list[str]:
    """The config keys the families' settings are under (of one scope if given): what a job may change when it
    continues (its scores are recomputed, its training is not), and, across runs, what no job's name holds."""
    keys = [key for f in families(scope) for key in f.settings.values() if key is not None]
    return list(dict.fromkeys(keys))


def undeclared(served: Iterable[Family], keys: Iterable[str]) -> list[str]:
    """The keys a scorer gave that the registry entries of the families it computes do not declare (a bug: say
    it, never log it)."""
    return sorted(set(keys) - {key for family in served for key in family.keys()})  # noqa: SIM118


# The families, in summary order. Training's test loop: the objective's own terms (betavae.model.module).
register(Family("elbo", "test loss", (
    Metric(LOSS, "loss (nats)", column=False),
    Metric(DISTORTION, "recon (nats)", paired=True),
    Metric(RATE, "KL (nats)", paired=True),
    Metric("test/elbo", "ELBO (nats)", paired=True),
    Metric("test/mi_batch", "MI, minibatch estimate (nats)", column=False),
    Metric("test/tc_batch", "TC, minibatch estimate (nats)", column=False),
    Metric("test/dimwise_kl_batch", "dim-wise KL, minibatch estimate (nats)", column=False),
    Metric("test/tc_discriminator_batch", "TC, discriminator's estimate (nats)", column=False),
    Metric("test/discriminator_loss_batch", "discriminator's loss (nats)", column=False),
    Metric("test/dip_off_diagonal_batch", "DIP off-diagonal penalty", column=False),
    Metric("test/dip_diagonal_batch", "DIP diagonal penalty", column=False),
)))  # fmt: skip
# betavae.metrics.latents: active units and the KL's decomposition over every tested image.
register(Family("latents", "latent statistics", (
    Metric("test/mi", "MI (nats)", paired=True, legend="index-code MI"),
    Metric("test/tc", "TC (nats)", paired=True, legend="total correlation"),
    Metric("test/dimwise_kl", "dim-wise KL (nats)", paired=True, legend="dimension-wise KL"),
    Metric("test/mi_se", "MI s.e.", column=False),
    Metric("test/tc_se", "TC s.e.", column=False),
    Metric("test/dimwise_kl_se", "dim-wise KL s.e.", column=False),
    Metric("test/active_units", "active units", decimals=1),
    Metric("val/active_units", "active units (val)", decimals=1, column=False),
), settings={Stage.TEST: "callbacks.latent_stats", Stage.EVALUATE: "eval"},
    panel=Panel("where the KL goes", "nats / image (test images, q(z) over them all)")))  # fmt: skip
# betavae.metrics.bounds: evaluate's likelihood bounds on the same images.
register(Family("bounds", "likelihood bounds", (
    Metric("test/nll_elbo", "−ELBO, IW images (nats)"),
    Metric("test/nll_elbo_se", "−ELBO s.e.", column=False),
    Metric("test/nll_iw", "NLL IW (nats)", paired=True),
    Metric("test/nll_iw_se", "NLL IW s.e."),
    Metric("test/iw_ess", "IW ESS / K", decimals=3),
    Metric("test/iw_samples", "IW samples K", decimals=0, column=False),
    Metric("test/elbo_samples", "ELBO samples", decimals=0, column=False),
    Metric("test/iw_images", "IW images", decimals=0, column=False),
), settings={Stage.EVALUATE: "eval"}))  # fmt: skip
# betavae.metrics.fid: Fréchet distances of decoder means, on data whose contract names the scorer's feature network.
register(Family("fid", "FID", (
    Metric("test/fid", "FID of decoder means", paired=True, legend="FID", spread="test/fid_std"),
    Metric("test/fid_std", "FID sd over draws"),
    Metric("test/fid_recon", "FID recon", paired=True),
    Metric("val/fid", "FID of decoder means (val)", column=False),
    Metric("val/fid_std", "FID sd over draws (val)", column=False),
), needs=("fid_features",), settings={Stage.TEST: "fid", Stage.EVALUATE: "fid"},
    panel=Panel("generation quality", "test FID of decoder means (prior samples)")))  # fmt: skip
# betavae.metrics.latents: linear probes of the classes, on data with classes.
register(Family("probe", "linear probe (test/probe_accuracy)", (
    Metric("test/probe_accuracy", "probe on z ~ q (%)", paired=True),
    Metric("test/probe_accuracy_active", "probe on active μ (%)", paired=True),
), needs=("classes",),
    settings={Stage.TEST: "callbacks.latent_stats", Stage.EVALUATE: "eval"}))  # fmt: skip
# Scores against the known factors of variation, on data with factors, all from one scorer
# (betavae.metrics.disentanglement.DisentanglementScorer, its `families`); each on posterior means, and with
# `disentanglement.representation=sampled` on one sampled code per image, under the same key + SAMPLED.
SAMPLED = "_sampled"
FACTORS = {Stage.TEST: "disentanglement", Stage.EVALUATE: "disentanglement"}
MORE_SCORES = Panel("disentanglement, more scores", "score (1: each latent holds one factor)")


def with_sampled(*means: Metric) -> tuple[Metric, ...]:
    """The metrics on posterior means, then each on sampled codes: its key + SAMPLED, its label + " (sampled)",
    not drawn in the panels."""
    sampled = (replace(m, key=m.key + SAMPLED, label=f"{m.label} (sampled)", legend=None) for m in means)
    return (*means, *sampled)


def factor_family(name: str, title: str, *means: Metric, panel: Panel | None = None) -> Family:
    """A family of scores against the known factors, computed by the disentanglement scorer."""
    return Family(name, title, with_sampled(*means), needs=("factors",), settings=FACTORS, panel=panel)


# betavae.metrics.disentanglement: MIG, DCI and SAP of the codes, the FactorVAE and BetaVAE scores of sampled batches.
register(factor_family("disentanglement", "disentanglement scores",
    Metric("test/mig", "MIG", decimals=3, paired=True, legend="MIG"),
    Metric("test/dci_disentanglement", "DCI disentanglement", decimals=3, paired=True, legend="DCI disentanglement"),
    Metric("test/dci_completeness", "DCI completeness", decimals=3, paired=True),
    Metric("test/dci_informativeness", "DCI informativeness", decimals=3, paired=True),
    Metric("test/sap", "SAP", decimals=3, paired=True),
    Metric("test/factorvae_score", "FactorVAE score", decimals=3, paired=True, legend="FactorVAE"),
    Metric("test/betavae_score", "BetaVAE score", decimals=3, paired=True, legend="BetaVAE"),
    panel=Panel("disentanglement", "score (1: each factor in one latent)")))  # fmt: skip
# betavae.metrics.modularity, .irs, .infomec: the scores disentanglement_lib and the InfoMEC authors add.
register(factor_family("modularity", "modularity and explicitness",
    Metric("test/modularity", "modularity", decimals=3, paired=True, legend="modularity"),
    Metric("test/explicitness", "explicitness (ROC-AUC)", decimals=3, paired=True, legend="explicitness"),
    panel=MORE_SCORES))  # fmt: skip
register(factor_family("irs", "interventional robustness score",
    Metric("test/irs", "IRS", decimals=3, paired=True, legend="IRS"), panel=MORE_SCORES))  # fmt: skip
register(factor_family("infomec", "InfoMEC",
    Metric("test/infomec_m", "InfoM", decimals=3, paired=True, legend="InfoM"),
    Metric("test/infomec_c", "InfoC", decimals=3, paired=True, legend="InfoC"),
    Metric("test/infomec_e", "InfoE", decimals=3, paired=True, legend="InfoE"),
    panel=MORE_SCORES))  # fmt: skip
# betavae.metrics.downstream: each classifier's accuracy after 10 to 10,000 labelled codes, and the ratio of 100 to it.
register(factor_family("sample_efficiency", "downstream sample efficiency",
    Metric("test/sample_efficiency", "sample efficiency, LR (100 / 10,000)", decimals=3, paired=True,
           legend="logistic regression"),
    Metric("test/sample_efficiency_gbt", "sample efficiency, GBT (100 / 10,000)", decimals=3, paired=True,
           legend="boosted trees"),
    *(Metric(f"test/downstream_{p}_{n}", f"{label} accuracy, {n:,} codes", decimals=3, column=n in (100, 10_000))
      for p, label in (("lr", "LR"), ("gbt", "GBT")) for n in (10, 100, 1_000, 10_000)),
    panel=Panel("sample efficiency", "accuracy after 100 codes / after 10,000")))  # fmt: skip
# Training's own loop: each epoch's means over every image (betavae.model.module), logged, drawn as training curves;
# val/loss is what callbacks.checkpoint (conf/callbacks/checkpoint.yaml: monitor) keeps the best checkpoint by.
register(Family("curves", "training curves", (
    Metric(TRAIN_LOSS, "train loss (nats)", column=False),
    Metric("train/recon", "train recon (nats)", column=False),
    Metric("train/kl", "train KL (nats)", column=False),
    Metric(VAL_LOSS, "val loss (nats)", column=False),
    Metric("val/recon", "val recon (nats)", column=False),
    Metric("val/kl", "val KL (nats)", column=False),
)))  # fmt: skip
# The job's record (metrics.json): what was trained, written by training.
register(Family("record", "training record", (
    Metric("epochs", "epochs", decimals=0),
    Metric("wall_time_s", "wall time (s)", decimals=1),
)))  # fmt: skip
# Across the runs of a sweep: betavae.metrics.selection, unsupervised model selection among the seeds of each group
# (UDR), and the label-free scores of each job's codes on the same images; then betavae.metrics.paired, per-seed
# differences of every paired metric (the UDR family's included).
register(Family("udr", "unsupervised model selection (UDR)", (
    Metric("udr_lasso", "UDR (Lasso)", decimals=3, legend="UDR, Lasso"),
    Metric("udr_spearman", "UDR (Spearman)", decimals=3, legend="UDR, Spearman"),
    Metric("gaussian_tc", "Gaussian TC of μ (nats)", decimals=3, paired=True),
    Metric("mutual_info", "mean MI of μ (nats)", decimals=3, paired=True),
), scope=Scope.ACROSS_RUNS, settings={Stage.SUMMARY: "udr"},
    panel=Panel("unsupervised model selection", "UDR (1: seeds agree up to permutation and sign)")))  # fmt: skip
register(Family("paired", "paired differences", (), scope=Scope.ACROSS_RUNS,
               ))  # fmt: skip
