"""A sweep's summary, split by job: `read` (the job directories and the plan, `plan` the one use of Hydra's
private sweep expansion), `groups` (grouping, the swept key, the design's comparisons), `across` (the room for
scores computed across runs, e.g. `paired`), `tables` (summary.md, .csv, .json) and `plot` (tradeoff.png).
`summarize` runs them in that order.

Every job the sweep planned is listed: ok, failed (with the reason its metrics.json records), unfinished
(started, never finished: killed or interrupted) or not run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from betavae.files import write_npz, write_png
from betavae.runs import SweepDir
from betavae.summary import across, tables
from betavae.summary.groups import group_rows, in_table_order, label_groups, swept_key
from betavae.summary.read import Job, read_jobs


def summarize(sweep_dir: Path, cfg: DictConfig | None = None) -> tuple[str, list[Job]]:
    """Read every job of the sweep, score what is scored across runs (with the settings ``cfg`` holds: `udr`),
    write the four summary files at its root; return summary.md's text (table, notes, sections) and the jobs."""
    sweep = SweepDir(Path(sweep_dir))
    jobs = read_jobs(sweep)
    label_groups(jobs)
    entries: dict[str, Any] = {}
    sections = []
    along = swept_key(jobs)
    for name, scorer in across.scorers(cfg).items():
        found = scorer.score(sweep, in_table_order(jobs, along))  # its section lists the groups as the table does
        for j in jobs:
            j.update(found.per_job.get(j["job"], {}))
        for array_name, arrays in found.arrays.items():
            if arrays is None:
                sweep.arrays(array_name).unlink(missing_ok=True)  # of an earlier summary: it no longer holds
            else:
                write_npz(sweep.arrays(array_name), arrays)
        entries[name] = found.summary
        sections += [found.section] if found.section else []
    rows = group_rows(jobs, along)
    table = tables.markdown(rows, along)
    notes = tables.notes(jobs)
    text = "\n".join([f"# Sweep summary: {sweep.root}\n\n{table}", *([notes] if notes else []), *sections])
    tables.write_markdown(sweep.summary("md"), text)
    tables.write_csv(rows, along, sweep.summary("csv"))
    tables.write_summary_json(sweep.summary("json"), along, rows, jobs, entries)
    from betavae.summary.plot import tradeoff_plot  # here: modules that manage runs import summarize, not matplotlib

    write_png(sweep.root, sweep.tradeoff.stem, tradeoff_plot(rows, along))
    return text, jobs
