"""The jobs a sweep planned, from its multirun.yaml: the one place that expands Hydra's sweep grammar.

Hydra has no public function that turns a multirun's overrides into its jobs' override lists; its basic sweeper
does it in `BasicSweeper.split_arguments`, a private module (`hydra._internal`). We call it rather than parse
`a=1,2 b=range(3)` (choice, range, glob, interval sweeps) ourselves, and keep it here alone, so a change in Hydra
breaks one small function, which the summary tests exercise."""

from __future__ import annotations

from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from betavae.base.errors import RunError, first_line


def expand(overrides: list[str]) -> list[list[str]]:
    """The override list of each job that a command line's overrides make, as Hydra's basic sweeper makes them."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def planned_jobs(sweep: DictConfig) -> list[list[str]]:
    """The override list of every job the sweep (its multirun.yaml) planned."""
    params = [f"{k}={v}" for k, v in (OmegaConf.select(sweep, "hydra.sweeper.params") or {}).items()]
    return expand(params + list(sweep.hydra.overrides.task))


def read_plan(path: Path) -> tuple[DictConfig, list[list[str]]]:
    """A sweep's multirun.yaml and the jobs it planned; RunError in one line if it is not one."""
    try:
        sweep = OmegaConf.load(path)
        return sweep, planned_jobs(sweep)
    except Exception as err:  # YAML's, OmegaConf's or Hydra's override parser's error, several lines long
        raise RunError(f"{path}: unreadable as a Hydra multirun.yaml ({first_line(err)})") from None
