"""`python -m betavae.summarize sweep_dir=<multirun>`: one table and one trade-off plot for all jobs of a sweep
(`betavae.summary`), written again.

Jobs are grouped by their overrides except the seed; each group shows mean ± standard deviation over its seeds,
along the key the sweep swept. Writes summary.md, summary.csv, summary.json and tradeoff.png at the sweep root.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from betavae.base.cli import quote_path_arguments
from betavae.base.errors import ConfigError, RunError
from betavae.runs.continuation import over_recorded
from betavae.runs.layout import SweepDir
from betavae.runs.sweep import Job
from betavae.summary import summarize as summarize_sweep

log = logging.getLogger(__name__)


def summarize(cfg: DictConfig, overrides: Sequence[str] = ()) -> tuple[str, list[Job]]:
    """Rebuild the summary files of the sweep ``cfg.sweep_dir`` names, as `python -m betavae.summarize` does (UDR
    with the settings the sweep recorded, its `udr.*` ``overrides`` on top); return summary.md's text and the jobs
    it lists."""
    if OmegaConf.is_missing(cfg, "sweep_dir") or not cfg.sweep_dir:
        raise ConfigError("give sweep_dir=<multirun directory> (python -m betavae.summarize sweep_dir=...)")
    sweep_dir = Path(cfg.sweep_dir)
    return summarize_sweep(sweep_dir, with_recorded_udr(cfg, sweep_dir, overrides))


def with_recorded_udr(cfg: DictConfig, sweep_dir: Path, overrides: Sequence[str]) -> DictConfig:
    """``cfg`` with the `udr` settings the sweep ran with (its multirun.yaml), the command's `udr.<key>=`
    ``overrides`` on top, said in one line; summarize's own where the sweep recorded none; as it is with `udr=none`."""
    if "udr" not in cfg:
        return cfg
    plan = SweepDir(sweep_dir).plan
    try:
        recorded = OmegaConf.select(OmegaConf.load(plan), "udr") if plan.is_file() else None
    except Exception:  # an unreadable plan: the summary lists the jobs it finds; UDR takes summarize's settings
        recorded = None
    settings, given = over_recorded(recorded, "udr", overrides)
    if settings is None:
        log.info("UDR settings: summarize's (the sweep recorded none)")
        return cfg
    log.info("UDR settings: the sweep's%s", given)
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.udr = settings
    return cfg


@hydra.main(version_base="1.3", config_path="conf", config_name="summarize")
def main(cfg: DictConfig) -> None:
    """Rebuild the summary files of an existing sweep directory and print summary.md."""
    try:
        log.info("%s", summarize(cfg, HydraConfig.get().overrides.task)[0].rstrip("\n"))
    except (RunError, ConfigError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments()
    main()
