"""`python -m tests.toy_metric <train overrides>`: `python -m betavae.train` with one more metric family in the
registry, `toy` (the mean squared posterior mean of the tested images, in a panel of its own). The registry
test runs it as a real Hydra multirun: declaring the family and naming its scorer are the only changes."""

from __future__ import annotations

from betavae.metrics import registry, suite
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import encode_all

TOY = registry.Family(
    "toy",
    "toy score",
    (registry.Metric("test/toy", "toy score", decimals=4, paired=True, legend="mean μ²"),),
    settings=registry.EVERYWHERE,
    panel=registry.Panel("toy panel", "mean squared posterior mean"),
)


class ToyScore(Scorer):
    """The toy family's scorer: E[μ²] over the first ``limit`` test images and the latent dimensions."""

    def evaluate(self, model, data, limit, label) -> Evaluation:
        mu = encode_all(model, data.images("test")[0][:limit]).mu
        return Evaluation({"toy": float(mu.square().mean())})


def register() -> None:
    """Add the toy family and its scorer, once."""
    if TOY.name not in registry.FAMILIES:
        registry.register(TOY)
    suite.SCORERS[TOY.name] = ToyScore


def unregister() -> None:
    """Remove the toy family and its scorer."""
    registry.unregister(TOY.name)
    suite.SCORERS.pop(TOY.name, None)


if __name__ == "__main__":
    import runpy
    import sys

    register()
    sys.argv[0] = "betavae.train"
    runpy.run_module("betavae.train", run_name="__main__", alter_sys=True)  # as `python -m betavae.train` runs
