"""The summary's rows: each group's mean and sd over its seeds (groups: `betavae.runs.sweep.label_groups`), and
the key the sweep swept, which the tables sort and the plot reads along."""

from __future__ import annotations

import statistics
from typing import Any

from betavae.metrics import registry
from betavae.runs.layout import Status
from betavae.runs.sweep import OWN_WEIGHT, WEIGHTS, Job, ordered, several_objectives, value_of

Row = dict[str, Any]  # group, series, the swept key's value, n, status, seeds, mean and "<key> std" per metric


def swept_key(jobs: list[Job]) -> str:
    """The key the sweep swept, which its tables sort and its plot reads along: the numeric override whose values
    differ between groups; among several, an objective's own weight (beta, objective.c_max) first, then the one
    with the most values. Where none differs (one group, or only non-numeric choices), β. Where the jobs weigh
    different objectives (beta, objective.gamma, ...), each job's own weight (`OWN_WEIGHT`)."""
    if several_objectives(jobs):
        return OWN_WEIGHT
    values: dict[str, set[str]] = {}
    for j in jobs:
        for key, value in j.get("setting", {}).items():
            values.setdefault(key.lstrip("+"), set()).add(value)
    numeric = [k for k, v in values.items() if len(v) > 1 and all(ordered(x)[0] == 0 for x in v)]
    if not numeric:
        return "beta"
    return min(numeric, key=lambda k: (not k.startswith(WEIGHTS), -len(values[k]), k))


def key_label(key: str) -> str:
    """How tables and plots name the swept key: β for beta, else the key."""
    return {"beta": "β", OWN_WEIGHT: "own weight"}.get(key, key)


def in_table_order(jobs: list[Job], along: str) -> list[Job]:
    """The jobs in the order the tables list their groups: along the swept key by value, then by group and seed;
    each given its value along the key (None where its config has none). Along each objective's own weight, by
    objective first."""
    for j in jobs:
        j[along] = value_of(j, along)
    first = (lambda j: str(j.get("series"))) if along == OWN_WEIGHT else (lambda j: "")
    return sorted(jobs, key=lambda j: (first(j), sort_value(j[along]), str(j.get("group")), j["seed"]))


def group_rows(jobs: list[Job], along: str) -> list[Row]:
    """One row per group of finished jobs (mean, std, n), sorted along the swept key, then one row per job that
    did not finish; each with the swept key's value (None where its config has none)."""
    rows = []
    finished = [j for j in in_table_order(jobs, along) if j["status"] is Status.OK]
    for group in dict.fromkeys(j["group"] for j in finished):
        members = [j for j in finished if j["group"] == group]
        row: Row = {"group": group, "series": members[0].get("series", group), along: members[0][along],
                    "n": len(members), "status": Status.OK}  # fmt: skip
        row["seeds"] = sorted(j["seed"] for j in members)
        for metric in registry.columns():
            values = [j[metric.key] for j in members if metric.key in j]
            if values:
                row[metric.key] = statistics.fmean(values)
                row[f"{metric.key} std"] = statistics.stdev(values) if len(values) > 1 else None
                if len(values) < len(members):  # some seeds lack it: the mean is of fewer jobs than the row's
                    row[f"{metric.key} n"] = len(values)
        rows.append(row)
    rows += [{"group": j["label"], along: j[along], "n": 1, "status": j["status"], "reason": j["reason"]}
             for j in jobs if j["status"] is not Status.OK]  # fmt: skip
    return rows


def sort_value(value: float | None) -> tuple[int, float]:
    """Rows with a value first, by value."""
    return (0, value) if value is not None else (1, 0.0)
