"""Trained runs in Python, for notebooks and scripts: load one run or every finished run of a sweep (the best
checkpoint's model in eval mode, the run's config and metrics), then encode, decode, sample and traverse with
it; read a sweep's summary rows. docs/api.md shows each in use.

    from betavae.api import load_run
    run = load_run("multirun/results/beta=1.0,seed=1")
    codes = run.encode(run.images("test")[:100]).mu
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from betavae.errors import RunError
from betavae.files import read_json
from betavae.latents import encode_all
from betavae.model import VAE, Posterior
from betavae.module import BetaVAEModule
from betavae.runs import JobDir, RunRecord, SweepDir, job_dirs, run_config
from betavae.summary import summarize


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint (as metrics.json names it, else best-*.ckpt), else last.ckpt."""
    job = JobDir(Path(run_dir))
    record = RunRecord.read(job.root)
    candidates = [job.root / record.best_checkpoint] if record and record.best_checkpoint else []
    candidates += sorted(job.checkpoints.glob("best-*.ckpt"), reverse=True)
    candidates.append(job.last_checkpoint)
    for path in candidates:
        if path.is_file():
            return path
    raise RunError(f"no checkpoint in {job.checkpoints}")


@dataclass(frozen=True)
class Run:
    """One trained job: its directory, its best checkpoint and the module rebuilt from it alone (eval mode),
    the config it was trained with, and its record (metrics.json; None for a job that never finished)."""

    directory: Path
    checkpoint: Path
    module: BetaVAEModule
    config: DictConfig
    record: RunRecord | None

    @property
    def model(self) -> VAE:
        """The network: encoder, decoder and pixel likelihood."""
        return self.module.net

    @property
    def metrics(self) -> dict[str, float]:
        """The test metrics: training's (metrics.json), with evaluate's (evaluation.json) over them where it ran,
        as the sweep summary reads them (`betavae.runs.JobDir.results`)."""
        return JobDir(self.directory).results()

    def images(self, split: str = "test") -> torch.Tensor:
        """Every image of a split of the run's data ("train", "val" or "test"), flattened, in [0, 1]."""
        return instantiate(self.config.data).images(split)[0]

    def encode(self, images: torch.Tensor) -> Posterior:
        """q(z|x) of each image: (μ, log σ²), each [N, D], in batches on the model's device."""
        return encode_all(self.model, images)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The images codes z [N, D] stand for: the decoder's pixel means, [N, P] in [0, 1]."""
        return self.model.decode_mean(z.to(self.model.device))

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` images of codes z ~ N(0, temperature² I) drawn from ``seed`` (the same on every device)."""
        return self.model.sample(n, torch.Generator().manual_seed(seed), temperature)

    @torch.no_grad()
    def traverse(self, image: torch.Tensor, dim: int, values: Sequence[float]) -> torch.Tensor:
        """The image's posterior mean with latent ``dim`` set to each of ``values`` in turn, decoded: [V, P]."""
        z = self.encode(image.view(1, -1)).mu.repeat(len(values), 1)
        z[:, dim] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        return self.decode(z)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
    """The run in ``run_dir`` (a job directory of `python -m betavae.train`), its model on ``device``."""
    run_dir = Path(run_dir)
    path = best_checkpoint(run_dir)
    return Run(run_dir, path, BetaVAEModule.load(path, device), run_config(run_dir), RunRecord.read(run_dir))


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
