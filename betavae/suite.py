"""One evaluation suite: every per-run metric family of `betavae.registry` that is on in a config and applies to
the data, computed for one model on one data module, with the arrays and figures that go with the scores.
Training's test pass (`callbacks.metrics.TestScores`) and `python -m betavae.evaluate` both run it; each only
decides when, and where the results are written (`betavae.runs.JobDir.write_evaluation`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from betavae import registry
from betavae.data.contract import ImageData
from betavae.model import VAE
from betavae.registry import Scope, Stage


@dataclass
class Evaluation:
    """What scoring a model gives: metrics by key (test/…), arrays by file (<name>.npz in the job directory),
    figures by name (figures/<name>.png), documents by name (figures/<name>.json), each family's settings
    (recorded in evaluation.json), and one-line notes on scores that do not compare with other runs' (recorded
    in metrics.json and evaluation.json, listed by the summary)."""

    metrics: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    figures: dict[str, np.ndarray] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __or__(self, other: Evaluation) -> Evaluation:
        """Both, the other's entries winning; the notes of both."""
        merged = {f: {**getattr(self, f), **getattr(other, f)} for f in self.__dataclass_fields__ if f != "notes"}
        return Evaluation(**merged, notes=[*self.notes, *other.notes])


class Scorer:
    """A per-run family's computation (the registry names its class): its scores of a model on a data module,
    by name without the split ("mig"), with their arrays and figures."""

    def unfit(self, data: ImageData) -> str | None:
        """Why this scorer, as configured, cannot score ``data`` beyond what its family needs (None: it can)."""
        return None

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        """The scores (keys without the split) of ``model`` on the test split, on its first ``limit`` images where
        the family scores images (all if None); ``label`` titles its figures."""
        raise NotImplementedError

    @classmethod
    def configured(cls, node: DictConfig | None) -> Scorer | None:
        """The scorer its settings node builds (None: a family without settings); None where the node has no
        `_target_`: keys an experiment set under a group chosen `none` (`experiment=shapes_smoke
        disentanglement=none`) leave the family off."""
        if node is None:
            return cls()
        return instantiate(node) if "_target_" in node else None


class Suite:
    """The scorers of a run, by family name, in registry order."""

    def __init__(self, scorers: dict[str, Scorer]) -> None:
        self.scorers = scorers

    @classmethod
    def configured(cls, cfg: DictConfig, stage: Stage) -> Suite:
        """Every per-run family computed at ``stage`` whose settings are in ``cfg`` (registry.Family.settings), its
        scorer built now, so a bad setting or a missing file stops the run before any work."""
        scorers = {}
        for family in registry.families(Scope.PER_RUN):
            if family.scorer is None or stage not in family.settings:
                continue
            key = family.settings[stage]
            node = None if key is None else OmegaConf.select(cfg, key)
            if key is not None and node is None:
                continue  # its settings are not in the config: off (fid=none, disentanglement=none)
            if (scorer := registry.scorer_class(family).configured(node)) is not None:
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
        result, skipped = Evaluation(), self.skipped(data)
        for name, scorer in self.scorers.items():
            if name in skipped:
                continue
            found = scorer.evaluate(model, data, limit, label)
            found.metrics = {f"test/{key}": value for key, value in found.metrics.items()}
            if wrong := registry.undeclared(registry.FAMILIES[name], found.metrics):
                raise RuntimeError(f"metric family {name!r} gave {', '.join(wrong)}, which betavae.registry does not "
                                   "declare for it")  # fmt: skip
            result |= found
        return result
