"""FID of prior samples (and of reconstructions) against real images, with torchmetrics."""

from __future__ import annotations

import os
from collections.abc import Iterator

import lightning.pytorch as pl
import torch

from betavae.fid import fid_against_real, make_metric, set_real
from betavae.model import MLPVAE
from callbacks.output import decode_mean, device_of, split_images


class FID(pl.Callback):
    """`test/fid` (and `test/fid_recon`) on the tested checkpoint; `val/fid` every N epochs if asked.

    The metric is built when the callback is, so missing weights stop a run before any training.
    """

    def __init__(
        self,
        feature: str = "fashion",
        num_samples: int = 10_000,
        batch_size: int = 1000,
        every_n_epochs: int = 0,
        recon: bool = True,
        cache_dir: str | os.PathLike | None = "~/.cache/betavae/fid",
        inception_weights: str | None = None,
        seed: int = 0,
    ) -> None:
        self.metric = make_metric(feature, inception_weights)
        self.num_samples, self.batch_size, self.every_n_epochs = num_samples, batch_size, every_n_epochs
        self.recon, self.cache_dir, self.seed = recon, cache_dir, seed

    def samples(self, model: MLPVAE) -> Iterator[torch.Tensor]:
        """Decoder means of ``num_samples`` seeded draws z ~ N(0, I), batch by batch on the model's device."""
        generator = torch.Generator().manual_seed(self.seed)
        for start in range(0, self.num_samples, self.batch_size):
            n = min(self.batch_size, self.num_samples - start)
            yield decode_mean(model, torch.randn(n, model.latent_dim, generator=generator).to(device_of(model)))

    def reconstructions(self, model: MLPVAE, images: torch.Tensor) -> Iterator[torch.Tensor]:
        """Decoder means at z = μ of ``images``, batch by batch."""
        for batch in images.split(self.batch_size):
            yield decode_mean(model, model.encode(batch)[0])

    @torch.inference_mode()
    def evaluate(self, model: MLPVAE, datamodule: pl.LightningDataModule, split: str = "test") -> dict[str, float]:
        """FID of samples (and reconstructions, for the test split) against the split's real images."""
        self.metric.to(device_of(model))
        images, _ = split_images(datamodule, split, device_of(model))
        set_real(self.metric, images, self.cache_dir, self.batch_size)
        result = {f"{split}/fid": fid_against_real(self.metric, self.samples(model))}
        if self.recon and split == "test":
            result["test/fid_recon"] = fid_against_real(self.metric, self.reconstructions(model, images))
        return result

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epochs_done = trainer.current_epoch + 1
        if self.every_n_epochs and not trainer.sanity_checking and epochs_done % self.every_n_epochs == 0:
            pl_module.log_dict(self.evaluate(pl_module.model, trainer.datamodule, "val"))

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.log_dict(self.evaluate(pl_module.model, trainer.datamodule, "test"))
