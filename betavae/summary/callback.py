"""Hydra callback that summarises a multirun when it ends (table, CSV, JSON, trade-off plot)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from betavae.runs.layout import Status
from betavae.summary import summarize

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """On multirun end, write summary.md/.csv/.json and tradeoff.png at the sweep root and log the table; exit
    non-zero when a job did not finish, so scripts and CI see it."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            text, jobs = summarize(sweep_dir, config)
        except Exception:  # a summary problem must not hide the finished jobs
            log.exception("Sweep summary failed; rebuild it with: python -m betavae.summarize sweep_dir=%s", sweep_dir)
            return
        log.info("%s", text.rstrip("\n"))  # summary.md, which names the sweep
        if missing := [j for j in jobs if j["status"] is not Status.OK]:
            names = "; ".join(f"{j['label']} ({j['status']})" for j in missing)
            raise SystemExit(f"error: {len(missing)} of {len(jobs)} jobs did not finish: {names}")
