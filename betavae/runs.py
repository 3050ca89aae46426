"""Reading finished runs: job directories of a sweep, their configs, and their best checkpoints' models."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from betavae.files import RunError, read_json
from betavae.module import BetaVAEModule


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a Hydra multirun: its subdirectories that hold a .hydra/config.yaml."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep directory not found: {sweep_dir}")
    return sorted(config.parent.parent for config in Path(sweep_dir).glob("*/.hydra/config.yaml"))


def run_config(run_dir: Path) -> DictConfig:
    """The composed config Hydra saved for the run."""
    path = Path(run_dir) / ".hydra" / "config.yaml"
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory: {path} is missing")
    return OmegaConf.load(path)


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (as metrics.json names it, else best-*.ckpt), else last.ckpt."""
    run_dir = Path(run_dir)
    named = (read_json(run_dir / "metrics.json") or {}).get("best_checkpoint")
    candidates = [run_dir / named] if named else []
    candidates += sorted((run_dir / "checkpoints").glob("best-*.ckpt"), reverse=True)
    candidates.append(run_dir / "checkpoints" / "last.ckpt")
    for path in candidates:
        if path.is_file():
            return path
    raise RunError(f"no checkpoint in {run_dir / 'checkpoints'}")


def load_run(run_dir: Path, map_location: str = "cpu") -> tuple[BetaVAEModule, DictConfig, Path]:
    """The run's best checkpoint as a module (rebuilt from the checkpoint alone), the run's config, that path."""
    path = best_checkpoint(run_dir)
    return BetaVAEModule.load(path, map_location), run_config(run_dir), path
