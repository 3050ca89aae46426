"""Paired differences across a sweep's groups, the `paired` across-runs family: for each comparison its design
makes, per paired metric of the registry, the mean, sd and 95% t-interval of the per-seed differences."""

from __future__ import annotations

import math
import statistics
from typing import Any

import scipy.stats

from betavae.metrics import registry
from betavae.metrics.across import SweepScorer, SweepScores
from betavae.runs.layout import SweepDir
from betavae.runs.sweep import Job, by_seed, comparisons


def paired_differences(jobs: list[Job]) -> list[dict[str, Any]]:
    """For each comparison (`comparisons`) whose groups share seeds: per paired metric, the mean, sd and 95%
    t-interval of the per-seed differences (second group − first); a ranking holds only where the interval
    excludes 0."""
    groups, pairs = by_seed(jobs), []
    for a, b in comparisons(jobs):
        seeds = sorted(set(groups[a]) & set(groups[b]))
        if len(seeds) < 2:
            continue
        for metric in registry.paired():
            before = [groups[a][s].get(metric.key) for s in seeds]
            after = [groups[b][s].get(metric.key) for s in seeds]
            if None in before or None in after:
                continue
            d = [y - x for x, y in zip(before, after, strict=True)]
            mean, sd = statistics.fmean(d), statistics.stdev(d)
            half = float(scipy.stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
            interval = [mean - half, mean + half]
            pairs.append({"from": a, "to": b, "metric": metric.key, "n": len(d), "mean": mean, "sd": sd,
                          "ci95": interval, "within_noise": interval[0] <= 0 <= interval[1]})  # fmt: skip
    return pairs


def paired_markdown(pairs: list[dict[str, Any]]) -> str:
    """The paired differences as a Markdown table."""
    lines = ["| from → to | metric | seeds | mean diff. ± sd | 95% interval | |", "|" + " --- |" * 6]
    for p in pairs:
        verdict = "within noise" if p["within_noise"] else "differs"
        metric = registry.metric(p["metric"])
        (lo, hi), n = p["ci95"], metric.decimals
        lines.append(f"| {p['from']} → {p['to']} | {metric.label} | {p['n']} | {p['mean']:+.{n}f} ± "
                     f"{p['sd']:.{n}f} | [{lo:+.{n}f}, {hi:+.{n}f}] | {verdict} |")  # fmt: skip
    return "\n".join(lines) + "\n"


class PairedDifferences(SweepScorer):
    """The `paired` family: `paired_differences`, in summary.json's "paired" and a section of summary.md."""

    def score(self, sweep: SweepDir, jobs: list[Job]) -> SweepScores:
        pairs = paired_differences(jobs)
        section = ("## Paired differences over shared seeds (second group − first)\n\n" + paired_markdown(pairs)
                   if pairs else "")  # fmt: skip
        return SweepScores(summary=pairs, section=section)
