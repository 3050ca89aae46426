"""Reading finished runs: job directories of a sweep, their metrics, and their checkpoints, loaded safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from betavae.model import MLPVAE


class RunError(RuntimeError):
    """A run directory or checkpoint that cannot be used, with the reason."""


def job_dirs(sweep_dir: Path) -> list[Path]:
    """The job directories of a Hydra multirun: its subdirectories that hold a .hydra/config.yaml."""
    if not Path(sweep_dir).is_dir():
        raise RunError(f"sweep directory not found: {sweep_dir}")
    return sorted(config.parent.parent for config in Path(sweep_dir).glob("*/.hydra/config.yaml"))


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if the file is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint read with torch.load(weights_only=True): nothing pickled in it is executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the safe unpickler's refusal, or a damaged file
        reason = str(err).strip().splitlines()[0]
        raise RunError(f"{path}: refused, it cannot be loaded as plain tensors and values ({reason})") from None


def load_model(run_dir: Path, checkpoint: Path | None = None) -> tuple[MLPVAE, DictConfig, Path]:
    """The run's model with the weights of ``checkpoint`` (default: its best), its config and that path."""
    cfg = run_config(run_dir)
    path = checkpoint or best_checkpoint(run_dir)
    state = load_checkpoint(path).get("state_dict")
    if not isinstance(state, dict):
        raise RunError(f"{path}: no state_dict in this checkpoint")
    model: MLPVAE = instantiate(cfg.model)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return model.eval(), cfg, path
