"""One evaluation suite: every per-run metric family of `betavae.metrics.registry` that is on in a config and
applies to the data, computed for one model on one data module, with the arrays and figures that go with the
scores. Training's test pass (`betavae.callbacks.metrics.TestScores`) and `python -m betavae.evaluate` both run it;
each only decides when, and where the results are written (`betavae.runs.layout.JobDir.write_arrays`)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from betavae.data.contract import ImageData
from betavae.metrics import registry
from betavae.metrics.across import SweepScorer
from betavae.metrics.bounds import LikelihoodBounds
from betavae.metrics.disentanglement import CODE_FAMILIES, DisentanglementScorer
from betavae.metrics.fid import FIDScorer
from betavae.metrics.latents import LatentScores, ProbeScores
from betavae.metrics.paired import PairedDifferences
from betavae.metrics.registry import Scope, Stage
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.metrics.selection import ModelSelection
from betavae.model.networks import VAE

# Each family's scorer, by the family's name in the registry (which declares its metrics and settings): per run,
# run by the suite below; across runs, by the sweep summary (`betavae.summary.summarize`).
SCORERS: dict[str, type[Scorer]] = {
    "latents": LatentScores,
    "bounds": LikelihoodBounds,
    "fid": FIDScorer,
    "probe": ProbeScores,
    **dict.fromkeys(CODE_FAMILIES, DisentanglementScorer),  # one scorer for every score against the factors
}
SWEEP_SCORERS: dict[str, type[SweepScorer]] = {"udr": ModelSelection, "paired": PairedDifferences}


class Suite:
    """The scorers of a run, by family name, in registry order."""

    def __init__(self, scorers: dict[str, Scorer]) -> None:
        self.scorers = scorers

    @classmethod
    def configured(cls, cfg: DictConfig, stage: Stage) -> Suite:
        """Every per-run family computed at ``stage`` whose settings are in ``cfg`` (registry.Family.settings), its
        scorer built now, so a bad setting or a missing file stops the run before any work."""
        scorers, built = {}, {}
        for family in registry.families(Scope.PER_RUN):
            if family.name not in SCORERS or stage not in family.settings:
                continue
            key = family.settings[stage]
            node = None if key is None else OmegaConf.select(cfg, key)
            if key is not None and node is None:
                continue  # its settings are not in the config: off (fid=none, disentanglement=none)
            shared = (SCORERS[family.name], key)  # families of one scorer and settings share one (the factor scores)
            if shared not in built:
                built[shared] = SCORERS[family.name].configured(node)
            if (scorer := built[shared]) is not None and scorer.computes(family.name):
                scorers[family.name] = scorer
        return cls(scorers)

    def skipped(self, data: ImageData) -> dict[str, str]:
        """Each family that cannot score ``data``, with the one line why: what the data lacks, else what its
        scorer cannot do."""
        reasons = {}
        for name, scorer in self.scorers.items():
            family = registry.FAMILIES[name]
            unfit = scorer.unfit(data)  # first: a scorer may refuse data it insists on (disentanglement.compute=true)
            lacking = [reason for need in family.needs if (reason := data.lacks(need))]
            if reason := (lacking[0] if lacking else unfit):
                reasons[name] = reason
        return reasons

    def announce(self, data: ImageData) -> list[str]:
        """The lines saying which families are left out on ``data`` and why ("No FID: data=shapes: ...")."""
        return [f"No {registry.FAMILIES[name].title}: {reason}" for name, reason in self.skipped(data).items()]

    def evaluate(self, model: VAE, data: ImageData, limit: int | None = None, label: str = "") -> Evaluation:
        """Every family that applies to ``data``: its test metrics (test/<name>), arrays, figures and settings."""
        result, skipped, done = Evaluation(), self.skipped(data), []
        for name, scorer in self.scorers.items():
            if name in skipped or any(scorer is other for other in done):
                continue
            done.append(scorer)
            served = [registry.FAMILIES[n] for n, s in self.scorers.items() if s is scorer and n not in skipped]
            found = scorer.evaluate(model, data, limit, label)
            found.metrics = {f"test/{key}": value for key, value in found.metrics.items()}
            if wrong := registry.undeclared(served, found.metrics):
                raise RuntimeError(f"metric family {name!r} gave {', '.join(wrong)}, which betavae.metrics.registry "
                                   "does not declare for it")  # fmt: skip
            result |= found
        return result
