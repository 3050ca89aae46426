"""The LightningModule: its step and its objective. Each epoch's exact means and the divergence check are
`betavae.model.epoch`'s, the RNG states a checkpoint keeps `betavae.model.rng`'s, loading one
`betavae.model.checkpoints.load_module`."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.seed import seed_everything

from betavae.base.config import require_positive
from betavae.model import rng
from betavae.model.epoch import EpochTerms, check_finite
from betavae.model.networks import VAE
from betavae.model.objectives import BetaObjective, LossTerms, Objective, Parts, Progress, gaussian_kl

Batch = tuple[torch.Tensor, torch.Tensor]


class BetaVAEModule(pl.LightningModule):
    """β-VAE training, validation and test; `{stage}/loss|recon|kl` are means over every image of the epoch.
    Training minimises the objective as scheduled; validation and test report it at the end of its schedule."""

    def __init__(self, net: VAE, objective: Objective | None = None, lr: float = 1e-3) -> None:
        super().__init__()
        require_positive("lr", lr)
        self.objective = objective if objective is not None else BetaObjective()
        # Plain values, so a checkpoint alone rebuilds its model and objective (`checkpoints.load_module`).
        self.save_hyperparameters({"net": net.architecture, "objective": self.objective.hparams(), "lr": lr})
        self.net, self.lr = net, lr
        # One Adam step per batch, written out: Lightning's automatic-optimization closure cost about 4% of a
        # CPU training epoch (benchmarks/train_speed.py).
        self.automatic_optimization = False
        self._epoch = EpochTerms()
        self.last_loss: float | None = None  # the training loss at the last check, for the progress bar
        self._resumed_rng: list[dict[str, Any]] | None = None  # by rank

    @property
    def beta(self) -> float | None:
        """β of a β objective (None for another objective)."""
        return self.objective.weight.get("beta")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, μ, log σ²) for flattened images."""
        return self.net(x)

    def progress(self, batch_idx: int) -> Progress:
        """Optimizer steps taken and epochs done (fractional) before training batch ``batch_idx``."""
        return Progress(self.global_step, self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches))

    def _step(self, batch: Batch, stage: str, at: Progress | None = None) -> tuple[LossTerms, Parts | None]:
        """Loss on one batch, and the objective's own terms; their detached values are kept for the epoch's exact
        means."""
        x, _ = batch
        mu, logvar = self.net.encode(x)
        z = self.net.reparameterize(mu, logvar)
        # The terms in float32 under any autocast precision: a bfloat16 sum over 784 pixels keeps 3 digits.
        logits, mu, logvar, z = (t.float() for t in (self.net.decode(z), mu, logvar, z))
        n = x.shape[0]
        recon, kl = self.net.nll(logits, x).sum() / n, gaussian_kl(mu, logvar).sum() / n
        if stage != "train" and self.objective.batch_size:  # β-TCVAE, DIP-VAE: the loss comes at epoch end
            self._epoch.add_samples(stage, self.objective.batch_size, self.objective.parts, z, mu, logvar)
            terms = LossTerms(recon + kl, recon, kl)
            parts = tuple(torch.zeros(len(self.objective.terms), device=recon.device))  # summed from the chunks
        else:
            parts = self.objective.parts(z, mu, logvar)
            terms = LossTerms(self.objective(recon, kl, at, parts), recon, kl)
        self._epoch.add(stage, torch.stack([terms.loss, recon, kl, *(parts or ())]), n)
        return terms, parts

    def _log_epoch(self, stage: str) -> None:
        """Log exact epoch means: sums over all images (across ranks) divided by the image count. Every rank
        takes part in the sum, also one that had no batch, or the others would wait for it."""
        width = 3 + len(self.objective.terms)  # (loss, recon, kl, the objective's own terms)
        totals = self._epoch.totals(stage, width, self.objective.parts, self.device)
        *sums, count = self.trainer.strategy.reduce(totals, reduce_op="sum").unbind()
        if not count:  # no rank had a batch
            return
        loss, recon, kl, *parts = (total / count for total in sums)
        if stage != "test":
            check_finite(f"{stage}/loss", f"epoch {self.trainer.current_epoch}", recon, kl)
        # Training's loss is the mean of what each step minimised; validation's and test's are the final objective
        # of the epoch's means (for β, β-TCVAE and FactorVAE objectives the two agree; |KL − C| is not linear).
        if stage != "train":
            loss = self.objective(recon, kl, parts=tuple(parts) if parts else None)
        metrics = {f"{stage}/loss": loss, f"{stage}/recon": recon, f"{stage}/kl": kl}
        # The objective's minibatch estimates; the full-data MI, TC and dimension-wise KL are the latents family's.
        metrics |= {f"{stage}/{name}_batch": value for name, value in zip(self.objective.terms, parts, strict=True)}
        if stage == "test":
            metrics[f"{stage}/elbo"] = -(recon + kl)
        # Already summed over ranks; sync_dist only tells Lightning so (a mean of equal values).
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)

    def _check_training(self) -> None:
        """Stop if a training batch since the last check had a non-finite loss on any rank, naming the first such
        step: every rank stops together, with the same message. One host sync per call; called every
        `log_every_n_steps` batches and at the last batch of the epoch, so a divergence stops training before
        validation, the epoch's callbacks and its checkpoint."""
        if (unchecked := self._epoch.unchecked()) is None:
            return
        found, count = unchecked
        if self.trainer.world_size > 1:
            gathered = self.all_gather(found)  # [ranks, 4]; ranks run the same steps
            found = gathered[gathered[:, 0].argmin()]
        index, recon, kl, self.last_loss = found.tolist()
        if index < count:
            where = f"step {self.trainer.global_step - count + int(index)}, epoch {self.trainer.current_epoch}"
            check_finite("training loss", where, torch.tensor(recon), torch.tensor(kl))

    def all_optimizers(self) -> list[Any]:
        """The model's optimizer, then the objective's own (FactorVAE's discriminator's)."""
        optimizers = self.optimizers()
        return optimizers if isinstance(optimizers, list) else [optimizers]

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        terms, parts = self._step(batch, "train", self.progress(batch_idx))
        optimizers = self.all_optimizers()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        # One backward pass: the objective's side loss reaches only its own parameters (FactorVAE's discriminator).
        self.manual_backward(terms.loss + self.objective.side_loss(parts))
        for optimizer in optimizers:
            optimizer.step()
        if batch_idx % self.trainer.log_every_n_steps == 0 or batch_idx + 1 >= self.trainer.num_training_batches:
            self._check_training()

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def setup(self, stage: str) -> None:
        """Fill in the training-set size an objective needs. Give each DDP process its own noise stream: every
        process starts from the job's seed and would draw the same ε as the others at every step. Process 0 keeps
        the seed's stream, as a single process has it."""
        if self.objective.needs_dataset_size:  # β-TCVAE: its q(z) is over the training images
            self.objective.set_dataset_size(
                self.trainer.datamodule.size("train"), "objective.dataset_size (the training split's size)"
            )
            self.hparams["objective"] = self.objective.hparams()
        if stage == "fit" and self.global_rank > 0:
            seed = np.random.SeedSequence([torch.initial_seed(), self.global_rank]).generate_state(1)[0]
            seed_everything(int(seed), workers=True, verbose=False)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save every process's RNG states, by rank: with the epoch (which seeds the batch order), an exact
        continuation needs them."""
        checkpoint["rng_state"] = rng.gather_objects(rng.rng_state())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the saved RNG states for the first resumed epoch (the sanity check before it draws numbers)."""
        saved = checkpoint.get("rng_state")
        self._resumed_rng = saved if isinstance(saved, list) or saved is None else [saved]  # or one process's

    def on_train_start(self) -> None:
        """Train at the configured lr also when the resumed optimizer state holds another one (a checkpoint from
        another run, ckpt_path=): Adam's moments carry over, its lr does not."""
        for group in self.all_optimizers()[0].optimizer.param_groups:
            group["lr"] = self.lr

    def on_train_epoch_start(self) -> None:
        self._epoch.checked = 0
        if self._resumed_rng is not None:
            if self.global_rank < len(self._resumed_rng):  # a process the checkpoint did not have keeps its seed
                rng.set_rng_state(self._resumed_rng[self.global_rank])
            self._resumed_rng = None

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        schedule = self.objective.schedule(Progress(self.global_step, self.current_epoch + 1.0))
        self.log_dict({f"train/{name}": value for name, value in schedule.items()})

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.net.parameters(), lr=self.lr, fused=True), *self.objective.optimizers()]
