"""Writing a sweep's summary: the Markdown table of its groups, the CSV and the JSON, each metric formatted as
its registry entry says."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from betavae.base.files import atomic, write_json
from betavae.metrics import registry
from betavae.runs.layout import Status
from betavae.runs.sweep import Job
from betavae.summary.groups import Row, key_label


def cell(row: Row, key: str) -> str:
    """'mean ± std' (or the mean alone, or '–' where no job has it), with how many jobs it comes from where fewer
    than the group's, formatted for the table."""
    if key not in row:
        return "–"
    digits = registry.metric(key).decimals
    text = f"{row[key]:.{digits}f}"
    if (std := row.get(f"{key} std")) is not None:
        text += f" ± {std:.{digits}f}"
    if (count := row.get(f"{key} n")) is not None:
        text += f" ({count} of {row['n']} jobs)"
    return text


def table_cell(text: str) -> str:
    """``text`` as one Markdown table cell: on one line, its pipes escaped (a reason may hold a traceback's
    message of several lines)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def value_cell(value: float | None) -> str:
    """The swept key's value in a row ('–' where the job's config has none)."""
    return "–" if value is None else f"{value:g}"


def markdown(rows: list[Row], along: str) -> str:
    """The summary as a Markdown table along the swept key; only the columns some row has (no β column for jobs
    whose objective has none: a capacity sweep over seeds)."""
    keys = [m.key for m in registry.columns() if any(m.key in r for r in rows)]
    swept = [key_label(along)] if any(r.get(along) is not None for r in rows) else []
    header = ["job group", *swept, "seeds", "status", *(registry.metric(k).label for k in keys)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in rows:
        status = r["status"] if r["status"] is Status.OK else f"**{r['status']}**: {table_cell(r['reason'])}"
        value = [value_cell(r.get(along))] if swept else []
        cells = [r["group"], *value, str(r["n"]), str(status), *(cell(r, k) for k in keys)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def notes(jobs: list[Job]) -> str:
    """summary.md's section of the jobs whose scores do not compare with others', each note in one line."""
    lines = [f"- {j['job']}: {table_cell(note)}" for j in jobs for note in j.get("notes", [])]
    return "## Notes\n\n" + "\n".join(lines) + "\n" if lines else ""


def write_markdown(path: Path, text: str) -> None:
    """Write summary.md, atomically."""
    with atomic(path) as tmp:
        tmp.write_text(text)


def write_csv(rows: list[Row], along: str, path: Path) -> None:
    """One line per row: group, the swept key, n, status, then each metric's mean, std and (where fewer than the
    group's jobs have it) the number of jobs it comes from."""
    fields = ["group", along, "n", "status"] + [f"{m.key}{s}" for m in registry.columns() for s in ("", " std", " n")]
    with atomic(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_summary_json(path: Path, along: str, rows: list[Row], jobs: list[Job], across: dict[str, Any]) -> None:
    """summary.json: the swept key, the groups, every job (without its config) and each across-runs family's
    entry under its name."""
    plain = [{k: v for k, v in j.items() if k != "config"} for j in jobs]
    write_json(path, {"along": along, "groups": rows, "jobs": plain, **across})
