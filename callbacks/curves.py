"""Training curves: train and val recon, KL and loss per epoch, read from the logged metrics."""

from __future__ import annotations

import lightning.pytorch as pl

from betavae.figures import new_figure, render
from callbacks.output import publish

PANELS = ("recon", "kl", "loss")


class TrainingCurves(pl.Callback):
    """Collect each epoch's logged `train/*` and `val/*` means and plot them when fitting ends."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def _record(self, trainer: pl.Trainer) -> None:
        """Keep the last finished epoch's logged values (they reach callback_metrics after its end hooks)."""
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.split("/")[0] in ("train", "val")}
        if "train/loss" in logged:
            self.history.append({"epoch": trainer.current_epoch, **logged})

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._record(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._record(trainer)
        if not trainer.is_global_zero or not self.history:
            return
        fig = new_figure(12, 3.6)
        for ax, name in zip(fig.subplots(1, len(PANELS)), PANELS, strict=True):
            for stage in ("train", "val"):
                points = [(h["epoch"], h[f"{stage}/{name}"]) for h in self.history if f"{stage}/{name}" in h]
                if points:
                    ax.plot(*zip(*points, strict=True), marker="o", ms=3, label=stage)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"{name} (nats / image)")
            ax.set_title(name)
            ax.legend()
        fig.suptitle(f"β = {pl_module.beta:g}")
        publish(trainer, "training_curves", render(fig))
