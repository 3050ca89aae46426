"""A job's checkpoints: written atomically, read without executing code, and the one a job continues from (its
newest intact one, a damaged one set aside), refused in one line when this job cannot continue it."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig

from betavae.base.errors import Refused, RunError, first_line
from betavae.base.files import write_bytes
from betavae.model.module import BetaVAEModule
from betavae.model.networks import build, named
from betavae.model.objectives import objective_from

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, atomic on every filesystem: the bytes go to a temporary file beside the
    checkpoint, reach the disk, then take its name. (Lightning's own save copies a file from the system's
    temporary directory into place, which a kill or a full disk leaves truncated where the two directories are
    on different filesystems.)"""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (Lightning's CheckpointIO interface)."""
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(Path(path), buffer.getbuffer())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint read with torch.load(weights_only=True): nothing pickled in it is executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # the safe unpickler's refusal, or a damaged file
        empty = Path(path).is_file() and Path(path).stat().st_size == 0
        reason = "the file is empty" if empty else first_line(err)
        raise RunError(f"{path}: refused, it cannot be loaded as plain tensors and values ({reason})") from None


def checkpoint_callbacks(trainer: pl.Trainer) -> tuple[ModelCheckpoint | None, ModelCheckpoint | None]:
    """The job's (best by a monitored metric, last) ModelCheckpoint callbacks, either None if not configured."""
    found = [c for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint)]
    return next((c for c in found if c.monitor), None), next((c for c in found if not c.monitor), None)


def own_checkpoint(directory: Path) -> tuple[Path | None, dict[str, Any] | None]:
    """The job's newest intact checkpoint in ``directory`` (last.ckpt, else the newest other) and its contents.
    Process 0 sets a damaged one aside (renamed, with a warning), so a kill or a full disk is never a dead end;
    the other DDP processes skip it alike."""
    found = sorted(Path(directory).glob("*.ckpt"), key=lambda p: (p.name == "last.ckpt", p.stat().st_mtime))
    for path in reversed(found):
        try:
            return path, load_checkpoint(path)
        except RunError as err:
            if rank_zero_only.rank == 0:
                aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
                path.replace(aside)
                log.warning("%s; set aside as %s, continuing from the newest intact checkpoint if any", err, aside.name)
    return None, None


def check_resumable(path: Path, checkpoint: dict[str, Any], cfg: DictConfig, module: pl.LightningModule) -> None:
    """Refuse, in one line, a checkpoint this job cannot continue: another network, or more epochs trained than
    trainer.max_epochs allows."""
    saved = named((checkpoint.get("hyper_parameters") or {}).get("net") or {})
    for key, value in module.hparams["net"].items():
        if key in saved and saved[key] != value:
            where = "model" if key == "name" else f"model.net.{key}"
            raise Refused(f"{path} holds a network with {key}={saved[key]!r}, this config builds {key}={value!r} "
                          f"({where}); its weights cannot continue here")  # fmt: skip
    trained = checkpoint.get("epoch", -1) + 1  # our checkpoints are saved at the end of epoch `epoch`
    if trained > (epochs := cfg.trainer.max_epochs):
        raise Refused(f"trainer.max_epochs={epochs}: {path} has already trained {trained} epochs; give "
                      f"trainer.max_epochs={trained} or more")  # fmt: skip


def resume_point(cfg: DictConfig, module: pl.LightningModule, last: ModelCheckpoint | None) -> Path | None:
    """What to continue from: ckpt_path if given, else the job's own newest intact checkpoint. Read once with
    weights_only first, so an unusable file is refused in one line before any work."""
    if cfg.ckpt_path:
        path: Path | None = Path(cfg.ckpt_path).expanduser()
        checkpoint = load_checkpoint(path)
    elif last is not None and last.dirpath:
        path, checkpoint = own_checkpoint(Path(last.dirpath))
    else:
        path = None
    if path is None:
        return None
    check_resumable(path, checkpoint, cfg, module)
    log.info("Resuming from %s", path)
    return path


def load_module(path: Path, map_location: str | torch.device = "cpu") -> BetaVAEModule:
    """The module saved in a checkpoint, in eval mode: architecture and objective from its hyperparameters, weights
    from its state. Read with torch.load(weights_only=True), and only this project's networks are built
    (`networks.build`, by name), so nothing in the file can run code."""
    checkpoint = load_checkpoint(path, map_location)
    hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
    if not all(isinstance(x, dict) for x in (hparams, state)) or not all(
        isinstance(hparams.get(key), dict) for key in ("net", "objective")
    ):
        raise RunError(f"{path}: not a betavae checkpoint (no network, objective or state_dict in it)")
    module = BetaVAEModule(build(hparams["net"]), objective_from(hparams["objective"]), hparams["lr"])
    try:
        module.load_state_dict(state)
    except RuntimeError as err:  # torch's message: a header line, then one line per mismatched tensor
        detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), first_line(err))
        raise RunError(f"{path}: its weights do not fit the network its hyperparameters describe ({detail})") from None
    return module.to(map_location).eval()
