"""The LightningModule: trains the MLP VAE on the β-VAE objective and logs exact per-epoch means."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch

from betavae.config import is_number, require
from betavae.files import RunError, load_checkpoint
from betavae.loss import LossTerms, beta_vae_loss
from betavae.model import MLPVAE

Batch = tuple[torch.Tensor, torch.Tensor]


class BetaVAEModule(pl.LightningModule):
    """β-VAE training, validation and test; `{stage}/loss|recon|kl` are means over every image of the epoch."""

    def __init__(self, net: MLPVAE, beta: float = 1.0, lr: float = 1e-3) -> None:
        super().__init__()
        require(is_number(beta) and beta >= 0, "beta", beta, "must be a number >= 0")
        require(is_number(lr) and lr > 0, "lr", lr, "must be a number > 0")
        # The architecture as plain values, so a checkpoint alone rebuilds its model (see `load`).
        self.save_hyperparameters({"net": net.architecture, "beta": beta, "lr": lr})
        self.net, self.beta, self.lr = net, beta, lr
        self._sums: dict[str, torch.Tensor] = {}

    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu") -> BetaVAEModule:
        """The module saved in a checkpoint, in eval mode: architecture and β from its hyperparameters, weights
        from its state. Read with torch.load(weights_only=True), and only MLPVAE is ever built, so nothing in the
        file can run code."""
        checkpoint = load_checkpoint(path, map_location)
        hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
        if not isinstance(hparams, dict) or not isinstance(hparams.get("net"), dict) or not isinstance(state, dict):
            raise RunError(f"{path}: not a betavae checkpoint (no network architecture or state_dict in it)")
        module = cls(MLPVAE(**hparams["net"]), hparams["beta"], hparams["lr"])
        module.load_state_dict(state)
        return module.to(map_location).eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, μ, log σ²) for flattened images."""
        return self.net(x)

    def _step(self, batch: Batch, stage: str) -> LossTerms:
        """Loss on one batch, adding its per-image sums to the epoch's running totals without a sync."""
        x, _ = batch
        logits, mu, logvar = self.net(x)
        terms = beta_vae_loss(logits, x, mu, logvar, self.beta)
        n = x.shape[0]
        totals = torch.stack([terms.loss.detach(), terms.recon.detach(), terms.kl.detach(), mu.new_tensor(1.0)]) * n
        self._sums[stage] = self._sums[stage] + totals if stage in self._sums else totals
        return terms

    def _log_epoch(self, stage: str) -> None:
        """Log exact epoch means: sums over all images (across ranks) divided by the image count."""
        totals = self._sums.pop(stage, None)
        if totals is None:
            return
        loss, recon, kl, count = self.trainer.strategy.reduce(totals, reduce_op="sum").unbind()
        metrics = {f"{stage}/loss": loss / count, f"{stage}/recon": recon / count, f"{stage}/kl": kl / count}
        if stage == "test":
            metrics["test/elbo"] = -(recon + kl) / count
        # Already summed over ranks; sync_dist only tells Lightning so (a mean of equal values).
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        terms = self._step(batch, "train")
        if batch_idx % self.trainer.log_every_n_steps == 0:  # progress bar only; the logger gets epoch means
            self.log("loss", terms.loss, prog_bar=True, logger=False)
        return terms.loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, fused=True)
