"""The progress bar: Lightning's, fed the training loss as a float the module already read back."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar


class ProgressBar(TQDMProgressBar):
    """Lightning's TQDM bar showing the training loss of the module's last divergence check (a float, read back
    every `log_every_n_steps` steps). A loss logged with `prog_bar=True` would be a tensor that the bar reads back
    at every refresh, each time waiting for the GPU."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        if (loss := getattr(pl_module, "last_loss", None)) is not None:
            metrics["loss"] = f"{loss:.4g}"
        return metrics
