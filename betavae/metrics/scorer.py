"""What a per-run metric family's scorer is (`Scorer`) and what scoring a model gives (`Evaluation`): the base
every scorer module builds on, below the suite that runs them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig

from betavae.data.contract import ImageData
from betavae.model.networks import VAE


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

    def computes(self, family: str) -> bool:
        """Whether this scorer, as configured, computes the registry family ``family`` (one scorer may compute
        several: the scores against the factors)."""
        return True

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
