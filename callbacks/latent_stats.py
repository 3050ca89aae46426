"""Per-dimension KL on the validation set and the active-unit count: how β switches dimensions off."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch

from betavae.figures import new_figure, render
from betavae.latents import Posterior, active_mask, active_units, encode, kl_per_dim, linear_probe_accuracy
from betavae.model import MLPVAE
from callbacks.output import device_of, due, publish, split_images


def kl_bar_chart(posterior: Posterior, beta: float, epoch: int | None = None) -> np.ndarray:
    """Bars of average KL per latent dimension, active units in a darker colour."""
    kl = kl_per_dim(posterior).cpu().numpy()
    active = active_mask(posterior).cpu().numpy()
    fig = new_figure(6.5, 3.5)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(kl)), kl, color=np.where(active, "tab:blue", "lightgray"))
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats / image)")
    ax.set_xticks(np.arange(len(kl)))
    when = "" if epoch is None else f" · epoch {epoch}"
    ax.set_title(f"β = {beta:g}{when} · {int(active.sum())}/{len(kl)} active units (val)")
    return render(fig)


@torch.no_grad()
def test_latent_metrics(model: MLPVAE, datamodule: pl.LightningDataModule, probe: bool = True) -> dict[str, float]:
    """`test/active_units` and, if ``probe``, `test/probe_accuracy` (fitted on the training split)."""
    device = device_of(model)
    test_images, test_labels = split_images(datamodule, "test", device)
    test = encode(model, test_images)
    metrics = {"test/active_units": float(active_units(test))}
    if probe:
        train_images, train_labels = split_images(datamodule, "train", device)
        train_mu = encode(model, train_images).mu
        metrics["test/probe_accuracy"] = linear_probe_accuracy(train_mu, train_labels, test.mu, test_labels)
    return metrics


class LatentStats(pl.Callback):
    """Log `val/active_units` every epoch; draw the per-dimension KL chart every N epochs and at fit end; at test
    time log `test/active_units` and `test/probe_accuracy` (a linear probe on the posterior means)."""

    def __init__(self, every_n_epochs: int = 5, probe: bool = True) -> None:
        self.every_n_epochs, self.probe = every_n_epochs, probe

    def _posterior(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Posterior:
        images, _ = split_images(trainer.datamodule, "val", pl_module.device)
        return encode(pl_module.model, images)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        posterior = self._posterior(trainer, pl_module)
        pl_module.log("val/active_units", float(active_units(posterior)))
        if due(trainer, self.every_n_epochs):
            publish(trainer, "kl_per_dim", kl_bar_chart(posterior, pl_module.beta, trainer.current_epoch + 1))

    @torch.no_grad()
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            posterior = self._posterior(trainer, pl_module)
            publish(trainer, "kl_per_dim", kl_bar_chart(posterior, pl_module.beta, trainer.current_epoch))

    @torch.no_grad()
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log_dict(test_latent_metrics(pl_module.model, trainer.datamodule, self.probe))
