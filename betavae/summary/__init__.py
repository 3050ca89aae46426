"""A sweep's summary: the jobs as `betavae.runs.sweep` reads them (and the plan), the scores computed across runs
(`betavae.metrics.across`: UDR, paired differences), then `groups` (grouping, the swept key, the design's
comparisons), `tables` (summary.md, .csv, .json) and `plot` (tradeoff.png); `callback` runs `summarize` when a
multirun ends.

Every job the sweep planned is listed: ok, failed (with the reason its metrics.json records), unfinished
(started, never finished: killed or interrupted) or not run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from betavae.base.files import write_npz, write_png
from betavae.metrics import across
from betavae.runs.layout import SweepDir
from betavae.runs.sweep import Job, label_groups, read_jobs
from betavae.summary import tables
from betavae.summary.groups import group_rows, in_table_order, swept_key


def summarize(sweep_dir: Path, cfg: DictConfig | None = None) -> tuple[str, list[Job]]:
    """Read every job of the sweep, score what is scored across runs (with the settings ``cfg`` holds: `udr`),
    write the summary files at its root; return summary.md's text (table, notes, sections) and the jobs. Every
    file is computed before any is written, so a summary that fails leaves the sweep's earlier files as they were."""
    sweep = SweepDir(Path(sweep_dir))
    jobs = read_jobs(sweep)
    label_groups(jobs)
    entries: dict[str, Any] = {}
    sections, arrays = [], {}
    along = swept_key(jobs)
    from betavae.metrics.suite import SWEEP_SCORERS  # here: reading a sweep's records needs no torch

    for name, scorer in across.scorers(SWEEP_SCORERS, cfg).items():
        found = scorer.score(sweep, in_table_order(jobs, along))  # its section lists the groups as the table does
        for j in jobs:  # a score a job cannot carry (NaN) is left out of its row, as if not computed
            j.update({k: v for k, v in found.per_job.get(j["job"], {}).items() if math.isfinite(v)})
        arrays |= found.arrays
        entries[name] = found.summary
        sections += [found.section] if found.section else []
    rows = group_rows(jobs, along)
    table = tables.markdown(rows, along)
    notes = tables.notes(jobs)
    text = "\n".join([f"# Sweep summary: {sweep.root}\n\n{table}", *([notes] if notes else []), *sections])
    from betavae.summary.plot import tradeoff_plot  # here: modules that manage runs import summarize, not matplotlib

    image = tradeoff_plot(rows, along)
    for array_name, values in arrays.items():
        if values is None:
            sweep.arrays(array_name).unlink(missing_ok=True)  # of an earlier summary: it no longer holds
        else:
            write_npz(sweep.arrays(array_name), values)
    tables.write_markdown(sweep.summary("md"), text)
    tables.write_csv(rows, along, sweep.summary("csv"))
    tables.write_summary_json(sweep.summary("json"), along, rows, jobs, entries)
    write_png(sweep.root, sweep.tradeoff.stem, image)
    return text, jobs
