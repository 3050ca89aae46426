"""Grouping a sweep's jobs: by their overrides except the seed, each group's mean and sd over its seeds; the key
the sweep swept, which the tables sort and the plot reads along; the pairs of groups a design compares."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

from betavae import registry
from betavae.runs import Status
from betavae.summary.read import Job, value_of

Row = dict[str, Any]  # group, the swept key's value, n, status, seeds, mean and "<key> std" per metric
WEIGHTS = ("beta", "objective.")  # keys of an objective's own weight (beta: top-level β; objective.c_max, ...)


def label_groups(jobs: list[Job]) -> None:
    """Set each job's group (its overrides except the seed and those every job shares: the swept values),
    setting (the same as key → value) and label (the same with the seed)."""
    common = set.intersection(*(set(j["overrides"]) for j in jobs)) if jobs else set()
    for j in jobs:
        varying = [o for o in j["overrides"] if o not in common]
        j["setting"] = dict(o.split("=", 1) for o in varying if not o.startswith("seed=") and "=" in o)
        j["group"] = ",".join(o for o in varying if not o.startswith("seed=")) or "(all jobs)"
        j["label"] = ",".join(varying) or j["job"]  # the job alone, for rows of jobs that did not finish


def ordered(value: str) -> tuple[int, float | str]:
    """A sort key for override values: numbers by value, before other values by name."""
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def swept_key(jobs: list[Job]) -> str:
    """The key the sweep swept, which its tables sort and its plot reads along: the numeric override whose values
    differ between groups; among several, an objective's own weight (beta, objective.c_max) first, then the one
    with the most values. Where none differs (one group, or only non-numeric choices), β."""
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
    return "β" if key == "beta" else key


def in_table_order(jobs: list[Job], along: str) -> list[Job]:
    """The jobs in the order the tables list their groups: along the swept key by value, then by group and seed;
    each given its value along the key (None where its config has none)."""
    for j in jobs:
        j[along] = value_of(j, along)
    return sorted(jobs, key=lambda j: (sort_value(j[along]), str(j.get("group")), j["seed"]))


def group_rows(jobs: list[Job], along: str) -> list[Row]:
    """One row per group of finished jobs (mean, std, n), sorted along the swept key, then one row per job that
    did not finish; each with the swept key's value (None where its config has none)."""
    rows = []
    finished = [j for j in in_table_order(jobs, along) if j["status"] is Status.OK]
    for group in dict.fromkeys(j["group"] for j in finished):
        members = [j for j in finished if j["group"] == group]
        row: Row = {"group": group, along: members[0][along], "n": len(members), "status": Status.OK}
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


def comparisons(jobs: list[Job]) -> list[tuple[str, str]]:
    """The comparisons a sweep's design makes: every pair of groups whose settings differ in one override only,
    in the order of its values (numbers ascending): β = 1 → 4, 1 → 10 and 4 → 10 at each objective, and
    β-VAE → β-TCVAE at each β, for `-m objective=beta,tcvae beta=1,4,10`."""
    settings = {j["group"]: j["setting"] for j in jobs if j["status"] is Status.OK}
    pairs = []
    for key in sorted({k for setting in settings.values() for k in setting}):
        lines: dict[tuple, list[str]] = {}  # the groups that agree on every other key, along this one
        for group, setting in settings.items():
            if key in setting:
                others = tuple(sorted((k, ordered(v)) for k, v in setting.items() if k != key))
                lines.setdefault(others, []).append(group)
        for _, line in sorted(lines.items()):
            pairs += itertools.combinations(sorted(line, key=lambda g: ordered(settings[g][key])), 2)
    return pairs


def by_seed(jobs: list[Job]) -> dict[str, dict[int, Job]]:
    """The finished jobs of each group, by seed."""
    groups: dict[str, dict[int, Job]] = {}
    for j in jobs:
        if j["status"] is Status.OK:
            groups.setdefault(j["group"], {})[j["seed"]] = j
    return groups
