"""A metric family and an across-runs score of the tests' own, each added as docs/configuration.md says a
contributor adds one: `toy` (per run: mean |μ|^power over the tested images, its settings in
tests/conf/toy/default.yaml, a panel of its own) and `toy_gap` (across runs: each job's test/kl minus its group's
mean). `python -m tests.toy_metric <train overrides>` is `python -m betavae.train` with both added."""

from __future__ import annotations

import statistics

from betavae.metrics import registry, suite
from betavae.metrics.across import SweepScorer, SweepScores
from betavae.metrics.registry import Scope, Stage
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import encode_all

TOY = registry.Family(
    "toy",
    "toy score",
    (registry.Metric("test/toy", "toy score", decimals=4, paired=True, legend="mean |μ|^p"),),
    settings={Stage.TEST: "toy", Stage.EVALUATE: "toy"},
    panel=registry.Panel("toy panel", "mean |posterior mean|^power"),
)
TOY_GAP = registry.Family(
    "toy_gap", "toy gap", (registry.Metric("toy_gap", "KL gap to the group mean", decimals=4),), scope=Scope.ACROSS_RUNS
)


class ToyScore(Scorer):
    """The toy family's scorer: E[|μ|^power] over the first ``limit`` test images and the latent dimensions."""

    def __init__(self, power: float = 2.0) -> None:
        self.power = power

    def evaluate(self, model, data, limit, label) -> Evaluation:
        mu = encode_all(model, data.images("test")[0][:limit]).mu
        return Evaluation({"toy": float(mu.abs().pow(self.power).mean())}, settings={"toy": {"power": self.power}})


class ToyGap(SweepScorer):
    """The toy across-runs score: each finished job's test/kl minus the mean of its group's."""

    def score(self, sweep, jobs) -> SweepScores:
        done = [j for j in jobs if j.get(registry.RATE) is not None]
        means = {
            g: statistics.mean(j[registry.RATE] for j in done if j["group"] == g) for g in {j["group"] for j in done}
        }
        per_job = {j["job"]: {"toy_gap": j[registry.RATE] - means[j["group"]]} for j in done}
        return SweepScores(per_job, {"groups": len(means)}, f"## Toy gap\n\n{len(means)} groups.\n")


def register() -> None:
    """Add both families and their scorers, once."""
    for family in (TOY, TOY_GAP):
        if family.name not in registry.FAMILIES:
            registry.register(family)
    suite.SCORERS[TOY.name] = ToyScore
    suite.SWEEP_SCORERS[TOY_GAP.name] = ToyGap


def unregister() -> None:
    """Remove both families and their scorers."""
    for family in (TOY, TOY_GAP):
        registry.unregister(family.name)
    suite.SCORERS.pop(TOY.name, None)
    suite.SWEEP_SCORERS.pop(TOY_GAP.name, None)


if __name__ == "__main__":
    import runpy
    import sys

    register()
    sys.argv[0] = "betavae.train"
    runpy.run_module("betavae.train", run_name="__main__", alter_sys=True)  # as `python -m betavae.train` runs
