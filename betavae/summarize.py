"""`python -m betavae.summarize sweep_dir=<multirun>`: one table and one trade-off plot for all jobs of a sweep
(`betavae.summary`), written again.

Jobs are grouped by their overrides except the seed; each group shows mean ± standard deviation over its seeds,
along the key the sweep swept. Writes summary.md, summary.csv, summary.json and tradeoff.png at the sweep root.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from betavae.base.cli import quote_path_arguments
from betavae.base.errors import RunError
from betavae.summary import summarize

log = logging.getLogger(__name__)
PATH_KEYS = ("sweep_dir",)
__all__ = ["summarize"]


@hydra.main(version_base="1.3", config_path="conf", config_name="summarize")
def main(cfg: DictConfig) -> None:
    """Rebuild the summary files of an existing sweep directory and print summary.md."""
    if OmegaConf.is_missing(cfg, "sweep_dir") or not cfg.sweep_dir:
        raise SystemExit("error: give sweep_dir=<multirun directory> (python -m betavae.summarize sweep_dir=...)")
    try:
        log.info("%s", summarize(Path(cfg.sweep_dir), cfg)[0].rstrip("\n"))
    except RunError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
