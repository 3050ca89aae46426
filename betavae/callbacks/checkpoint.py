"""The job's best checkpoint, alone in its directory."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint for the best checkpoints, leaving no stale file of its name pattern beside the
    ones it keeps: Lightning never deletes the checkpoint a run resumed from, nor one an earlier part of the run
    saved after the checkpoint this part resumed from (killed between two saves)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self.remove_stale(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self.remove_stale(trainer)

    def remove_stale(self, trainer: pl.Trainer) -> list[Path]:
        """Delete the files matching this callback's filename pattern that it does not keep; returns them."""
        if not trainer.is_global_zero or not self.best_k_models or not self.dirpath:
            return []
        keep = {Path(p).resolve() for p in self.best_k_models}
        pattern = re.sub(r"\{[^}]*\}", "*", self.filename or "*") + self.FILE_EXTENSION
        stale = [p for p in Path(self.dirpath).glob(pattern) if p.resolve() not in keep]
        for path in stale:
            trainer.strategy.remove_checkpoint(path)
        return stale
