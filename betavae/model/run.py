"""A trained run rebuilt from its directory alone: its best checkpoint's module in eval mode, the config it was
trained with and its record; what `betavae.api` gives notebooks and what every across-runs scorer and evaluate
load. Nothing in the directory can run code (`checkpoints.load_module`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from betavae.base.config import is_int
from betavae.base.errors import ConfigError, DataError, RunError, UsageError, first_line
from betavae.model.checkpoints import load_module
from betavae.model.module import BetaVAEModule
from betavae.model.networks import VAE, Posterior, encode_all
from betavae.runs.continuation import run_config
from betavae.runs.layout import JobDir, RunRecord

log = logging.getLogger(__name__)


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


def untested(run_dir: Path, checkpoint: Path, record: RunRecord | None) -> str | None:
    """Why the metrics do not describe ``checkpoint`` (the record's best checkpoint is gone), or None."""
    if record is None or not record.best_checkpoint or Path(run_dir) / record.best_checkpoint == checkpoint:
        return None
    return (f"{Path(run_dir) / record.best_checkpoint} is gone: loaded {checkpoint.name}, which the run's metrics "
            "(of the best checkpoint) do not describe")  # fmt: skip


def device_of(device: str | torch.device) -> torch.device:
    """``device`` as torch names it, refused in one line where it is no device or one this machine lacks."""
    try:
        found = torch.device(device)
    except (RuntimeError, TypeError):
        raise UsageError(f"device={device!r}: must be 'cpu', 'cuda' or 'cuda:N'") from None
    if found.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={device!r}: CUDA is not available on this machine; use device='cpu'")
    if found.type not in ("cpu", "cuda"):
        raise UsageError(f"device={device!r}: must be 'cpu', 'cuda' or 'cuda:N'")
    return found


@dataclass(frozen=True)
class Run:
    """One trained job: its directory, its best checkpoint and the module rebuilt from it alone (eval mode),
    the config it was trained with, and its record (metrics.json; None for a job that never finished)."""

    directory: Path
    checkpoint: Path
    module: BetaVAEModule
    config: DictConfig
    record: RunRecord | None
    untested: str | None = None  # why `metrics` are not of `checkpoint` (the best one is gone), or None

    @property
    def model(self) -> VAE:
        """The network: encoder, decoder and pixel likelihood."""
        return self.module.net

    @property
    def metrics(self) -> dict[str, float]:
        """The test metrics: training's (metrics.json), with evaluate's (evaluation.json) over them where it ran,
        as the sweep summary reads them (`betavae.runs.layout.JobDir.results`)."""
        return JobDir(self.directory).results()

    def images(self, split: str = "test") -> torch.Tensor:
        """Every image of a split of the run's data ("train", "val" or "test"), flattened, in [0, 1]."""
        return data_of(self.config).images(split)[0]

    def as_images(self, images: object, name: str = "images") -> torch.Tensor:
        """``images`` as the model takes them, flattened floats [N, C·H·W]: from floats in [0, 1] of any float
        dtype or uint8 pixels (÷ 255), each image flat or [C, H, W] ([H, W] for gray); else one line naming the
        argument and what it accepts."""
        shape = tuple(self.model.image_shape)
        values, dims = self.model.image_shape.values, ", ".join(map(str, shape))
        accepted = f"{name}: a tensor of images [N, {values}] or [N, {dims}] (floats in [0, 1], or uint8 pixels)"
        if not isinstance(images, torch.Tensor):
            raise UsageError(f"{accepted}, got {type(images).__name__}")
        per_image = images.shape[1:]
        if images.ndim < 2 or per_image not in (torch.Size([values]), torch.Size(shape),
                                                 torch.Size(shape[1:]) if shape[0] == 1 else None):  # fmt: skip
            raise UsageError(f"{accepted}, got shape {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            return images.flatten(1).float().div(255)
        if not images.is_floating_point():
            raise UsageError(f"{accepted}, got dtype {images.dtype}")
        return images.flatten(1).float()

    def encode(self, images: torch.Tensor) -> Posterior:
        """q(z|x) of each image (see `as_images` for what is taken): (μ, log σ²), each [N, D], in batches on the
        model's device."""
        return encode_all(self.model, self.as_images(images))

    def as_codes(self, z: object) -> torch.Tensor:
        """``z`` as float codes [N, D] of this model, else one line naming the argument."""
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.model.latent_dim or not (
            z.is_floating_point()):  # fmt: skip
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise UsageError(f"z: a float tensor of codes [N, {self.model.latent_dim}], got {got}")
        return z.float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The images codes z [N, D] stand for: the decoder's pixel means, [N, P] in [0, 1]."""
        return self.model.decode_mean(self.as_codes(z).to(self.model.device))

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` images of codes z ~ N(0, temperature² I) drawn from ``seed`` (the same on every device)."""
        if not is_int(n, 1):
            raise UsageError(f"n={n!r}: must be an integer >= 1")
        return self.model.sample(n, torch.Generator().manual_seed(seed), temperature)

    @torch.no_grad()
    def traverse(self, image: torch.Tensor, dim: int, values: Sequence[float]) -> torch.Tensor:
        """The image's posterior mean with latent ``dim`` set to each of ``values`` in turn, decoded: [V, P]."""
        latents = self.model.latent_dim
        if not is_int(dim, 0) or dim >= latents:
            raise UsageError(f"dim={dim!r}: must be a latent index in [0, {latents})")
        single = image[None] if isinstance(image, torch.Tensor) else image
        z = self.encode(single).mu.repeat(len(values), 1)
        z[:, dim] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        return self.decode(z)


def data_of(config: DictConfig, path: str | None = None) -> Any:
    """The data module a run was trained on (its recorded config), reading its file from ``path`` where given (a
    benchmark file moved since: `data.path=<your copy>`); a file that cannot be used is a `DataError` in one line."""
    node = config.data
    if path is not None and "path" in node:
        node = OmegaConf.merge(node, {"path": str(Path(path).expanduser())})
    try:
        return instantiate(node)
    except Exception as err:  # Hydra wraps what the data module raised: its one line, or the wrapper's
        cause = err
        while cause.__cause__ is not None or cause.__context__ is not None:
            cause = cause.__cause__ or cause.__context__
        if isinstance(cause, DataError | ConfigError):
            raise DataError(first_line(cause)) from None
        raise


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> Run:
    """The run in ``run_dir`` (a job directory of `python -m betavae.train`), its model on ``device``. Where the
    best checkpoint is gone and another is loaded, one warning line says so and `Run.untested` says why."""
    run_dir, device = Path(run_dir), device_of(device)
    path = best_checkpoint(run_dir)
    record = RunRecord.read(run_dir)
    if reason := untested(run_dir, path, record):
        log.warning("%s", reason)
    return Run(run_dir, path, load_module(path, device), run_config(run_dir), record, reason)
