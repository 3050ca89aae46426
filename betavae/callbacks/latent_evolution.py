"""When to snapshot the latent space for `betavae.figures.evolution`, and where its frames, PNG and GIF go."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import torch

from betavae.base.files import write_gif
from betavae.callbacks.publish import figure_dir, publish, publish_file
from betavae.callbacks.schedule import AtFitEnd, due
from betavae.data.memory import first_per_class
from betavae.figures.evolution import Frame, evolution_images
from betavae.metrics import registry
from betavae.model.module import BetaVAEModule
from betavae.model.networks import encode_all


class LatentEvolution(AtFitEnd):
    """Encode fixed validation images before training, every N epochs (0: none) and when fitting ends; at fit
    end publish every frame to the loggers, the last as latent_evolution.png, all as latent_evolution.gif."""

    def __init__(
        self,
        classes: Sequence[int] = (0, 1, 2),
        per_class: int = 1000,
        every_n_epochs: int = 1,
        fps: float = 2.0,
        hold_last_s: float = 2.0,
    ) -> None:
        self.classes, self.per_class, self.every_n_epochs = list(classes), per_class, every_n_epochs
        self.fps, self.hold_last_s = fps, hold_last_s
        self.frames: list[Frame] = []

    def _fixed(self, trainer: pl.Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed validation images every frame encodes, and their labels."""
        images, labels = trainer.datamodule.grouped("val")
        picks = first_per_class(labels, self.classes, self.per_class)
        return images[picks], labels[picks]

    def _snapshot(self, trainer: pl.Trainer, pl_module: BetaVAEModule, epoch: int, val_loss: float | None) -> None:
        """Record the posterior means of the fixed images now."""
        mu = encode_all(pl_module.net, self._fixed(trainer)[0]).mu
        self.frames.append(Frame(epoch, mu.cpu().numpy(), val_loss))

    def _snapshot_after_epoch(self, trainer: pl.Trainer, pl_module: BetaVAEModule, epochs_done: int) -> None:
        """A snapshot titled with the last logged val/loss."""
        val_loss = trainer.callback_metrics.get(registry.VAL_LOSS)
        self._snapshot(trainer, pl_module, epochs_done, None if val_loss is None else float(val_loss))

    def on_train_start(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not self.frames:  # a resumed run has its earlier frames from the checkpoint
            self._snapshot(trainer, pl_module, trainer.current_epoch, None)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if due(trainer, self.every_n_epochs, last=True):  # before the epoch's checkpoint, which keeps the frames
            self._snapshot_after_epoch(trainer, pl_module, trainer.current_epoch + 1)

    def state_dict(self) -> dict[str, Any]:
        """The frames so far (a few hundred kB each), so a resumed run's GIF starts before training."""
        return {"frames": [(f.epoch, torch.from_numpy(f.mu), f.val_loss) for f in self.frames]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.frames = [Frame(epoch, mu.numpy(), val_loss) for epoch, mu, val_loss in state_dict["frames"]]

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not trainer.is_global_zero or not self.frames:
            return
        if self.frames[-1].epoch < trainer.current_epoch:  # the final state, unless a periodic snapshot took it
            self._snapshot_after_epoch(trainer, pl_module, trainer.current_epoch)
        labels = self._fixed(trainer)[1].cpu().numpy()
        names = trainer.datamodule.groups
        images = evolution_images(self.frames, labels, self.classes, names, pl_module.objective.label)
        for frame, image in zip(self.frames, images, strict=True):
            publish(trainer, "latent_evolution", image, step=frame.epoch)  # steps by epoch (TensorBoard's slider)
        durations = [1000 / self.fps] * (len(images) - 1) + [1000 * self.hold_last_s]
        publish_file(trainer, write_gif(figure_dir(trainer) / "latent_evolution.gif", images, durations))
