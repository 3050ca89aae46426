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
from betavae.base.errors import ConfigError, RunError
from betavae.runs.sweep import Job
from betavae.summary import summarize as summarize_sweep

log = logging.getLogger(__name__)


def summarize(cfg: DictConfig) -> tuple[str, list[Job]]:
    """Rebuild the summary files of the sweep ``cfg.sweep_dir`` names, as `python -m betavae.summarize` does (UDR
    with ``cfg.udr``'s settings); return summary.md's text and the jobs it lists."""
    if OmegaConf.is_missing(cfg, "sweep_dir") or not cfg.sweep_dir:
        raise ConfigError("give sweep_dir=<multirun directory> (python -m betavae.summarize sweep_dir=...)")
    return summarize_sweep(Path(cfg.sweep_dir), cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="summarize")
def main(cfg: DictConfig) -> None:
    """Rebuild the summary files of an existing sweep directory and print summary.md."""
    try:
        log.info("%s", summarize(cfg)[0].rstrip("\n"))
    except (RunError, ConfigError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments()
    main()
