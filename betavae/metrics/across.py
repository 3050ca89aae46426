"""The room for scores computed across the runs of a sweep: each across-runs family of `betavae.metrics.registry`
has a `SweepScorer` (`betavae.metrics.suite.SWEEP_SCORERS`), which the summary runs on every job it read
before it groups them. Its per-job values join the jobs' rows (and so the groups' means, sds and paired
differences), and what it says of the sweep goes into summary.md (a section), summary.json (under the family's
name) and arrays at the sweep root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from betavae.metrics import registry
from betavae.metrics.registry import Scope, Stage
from betavae.runs.layout import SweepDir
from betavae.runs.sweep import Job


@dataclass
class SweepScores:
    """What an across-runs family gives: values per job (by job directory name, keys of its registry entry),
    its summary.json entry, its summary.md section, arrays (<name>.npz at the sweep root; None: the family has
    none now, and an earlier file goes) and one-line notes."""

    per_job: dict[str, dict[str, float]] = field(default_factory=dict)
    summary: Any = None
    section: str = ""
    arrays: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class SweepScorer:
    """An across-runs family's computation, from the sweep's jobs (grouped: `group`, `seed`, `setting`, their
    metrics) and its directory."""

    def score(self, sweep: SweepDir, jobs: list[Job]) -> SweepScores:
        raise NotImplementedError

    @classmethod
    def configured(cls, node: DictConfig | None) -> SweepScorer:
        """The scorer its settings node builds (None: its defaults)."""
        return cls()


def scorers(classes: dict[str, type[SweepScorer]], cfg: DictConfig | None = None) -> dict[str, SweepScorer]:
    """Every registered across-runs family's scorer (its class in ``classes``), by family name, in registry order,
    built from its settings in ``cfg`` (the config of the command writing the summary; its defaults where there
    is none)."""
    found = {}
    for family in registry.families(Scope.ACROSS_RUNS):
        key = family.settings.get(Stage.SUMMARY)
        node = OmegaConf.select(cfg, key) if cfg is not None and key else None
        if cfg is not None and key and node is None:
            continue  # off in this config (udr=none)
        found[family.name] = classes[family.name].configured(node)
    return found
