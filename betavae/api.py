"""Trained runs in Python, for notebooks and scripts: load one run or every finished run of a sweep (the best
checkpoint's model in eval mode, the run's config and metrics), then encode, decode, sample and traverse with
it; read a sweep's summary rows. docs/api.md shows each in use.

    from betavae.model.run import load_run
    run = load_run("multirun/results/beta=1.0,seed=1")
    codes = run.encode(run.images("test")[:100]).mu
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from betavae.base.errors import ConfigError, RunError, first_line
from betavae.base.files import read_json
from betavae.model.networks import VAE, build
from betavae.model.run import Run, device_of, load_run
from betavae.runs.layout import ModelDir, RunRecord, SweepDir, job_dirs
from betavae.summary import summarize

log = logging.getLogger(__name__)


def load_model(folder: str | Path, device: str | torch.device = "cpu") -> VAE:
    """The network of a folder `python -m betavae.export` wrote, rebuilt from it alone (config.json's architecture,
    model.safetensors' weights), in eval mode on ``device``. Nothing in the folder can run code."""
    from safetensors.torch import load_file

    model_dir, device = ModelDir(Path(folder)), device_of(device)
    config = read_json(model_dir.config)
    if not isinstance(config, dict) or config.get("format") != ModelDir.FORMAT or "architecture" not in config:
        raise RunError(f"{model_dir.config}: not a betavae model's config (format {ModelDir.FORMAT}, an architecture)")
    if not model_dir.weights.is_file():
        raise RunError(f"{model_dir.weights}: missing; the folder holds no weights")
    try:
        model = build(dict(config["architecture"]))
    except (ConfigError, TypeError, ValueError, KeyError) as err:  # a config.json edited by hand
        raise RunError(f"{model_dir.config}: its architecture does not build a network ({first_line(err)})") from None
    try:
        weights = load_file(model_dir.weights)
    except Exception as err:  # safetensors' own error: a file cut short or not safetensors
        raise RunError(f"{model_dir.weights}: not a whole safetensors file ({first_line(err)})") from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:  # torch's message: a header line, then one line per tensor that does not fit
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), first_line(err))
        raise RunError(f"{model_dir.weights}: its weights do not fit {model_dir.config}'s network ({detail})") from None
    return model.to(device).eval()


def load_sweep(sweep_dir: str | Path, device: str | torch.device = "cpu") -> list[Run]:
    """Every job of a sweep that finished, in job-directory order (`summary_rows` lists the others too)."""
    finished = [d for d in job_dirs(Path(sweep_dir)) if (r := RunRecord.read(d)) is not None and r.finished]
    return [load_run(d, device) for d in finished]


def summary_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """The sweep summary's rows (summary.json's groups: mean and sd over seeds per group, one row per job that
    did not finish), written first if the sweep has none yet."""
    path = SweepDir(Path(sweep_dir)).summary("json")
    if not path.is_file():
        summarize(Path(sweep_dir))
    summary = read_json(path)
    if summary is None:
        raise RunError(f"{path}: unreadable, not a JSON object")
    return summary["groups"]
