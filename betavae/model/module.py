"""The LightningModule: trains the MLP VAE on its objective and logs exact per-epoch means."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.seed import seed_everything

from betavae.base.config import require_positive
from betavae.base.errors import Diverged, RunError, first_line
from betavae.model.checkpoints import load_checkpoint
from betavae.model.networks import VAE, build
from betavae.model.objectives import BetaObjective, KLParts, LossTerms, Objective, Progress, gaussian_kl, objective_from
from betavae.runs.process import in_process_group

Batch = tuple[torch.Tensor, torch.Tensor]


def rng_state() -> dict[str, Any]:
    """This process's global RNG states: torch's CPU generator and, if CUDA is in use, its current device's,
    numpy's and Python's, as plain tensors, ints and strings, so a checkpoint holding them still loads with
    torch.load(weights_only=True)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None,
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the global RNG states saved by `rng_state`, the CUDA one onto this process's current device."""
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if isinstance(cuda, list):  # an older checkpoint's states of every visible GPU: take the first device's
        cuda = cuda[0] if cuda else None
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(cuda, torch.cuda.current_device())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def gather_objects(value: Any) -> list[Any]:
    """``value`` of every process of a distributed job, by rank ([value] alone in a single process)."""
    if not in_process_group():
        return [value]
    values: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(values, value)
    return values


class BetaVAEModule(pl.LightningModule):
    """β-VAE training, validation and test; `{stage}/loss|recon|kl` are means over every image of the epoch.
    Training minimises the objective as scheduled; validation and test report it at the end of its schedule."""

    def __init__(self, net: VAE, objective: Objective | None = None, lr: float = 1e-3) -> None:
        super().__init__()
        require_positive("lr", lr)
        self.objective = objective if objective is not None else BetaObjective()
        # Plain values, so a checkpoint alone rebuilds its model and objective (see `load`).
        self.save_hyperparameters({"net": net.architecture, "objective": self.objective.hparams(), "lr": lr})
        self.net, self.lr = net, lr
        # One Adam step per batch, written out: Lightning's automatic-optimization closure cost about 4% of a
        # CPU training epoch (benchmarks/train_speed.py).
        self.automatic_optimization = False
        # Per stage, each batch's detached (loss, recon, KL[, KL parts]) means and image count, summed when the
        # epoch ends: no host sync per step.
        self._batches: dict[str, list[tuple[torch.Tensor, int]]] = {}
        # Validation and test: the KL parts' means of consecutive chunks of the training batch size, and the
        # samples not yet in a chunk, so their estimate does not depend on data.eval_batch_size.
        self._chunks: dict[str, list[tuple[torch.Tensor, int]]] = {}
        self._carry: dict[str, tuple[torch.Tensor, ...]] = {}
        self._checked = 0  # training batches of this epoch already checked for a non-finite loss
        self.last_loss: float | None = None  # the training loss at the last check, for the progress bar
        self._resumed_rng: list[dict[str, Any]] | None = None  # by rank

    @property
    def beta(self) -> float | None:
        """β of a β objective (None for another objective)."""
        return self.objective.weight.get("beta")

    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu") -> BetaVAEModule:
        """The module saved in a checkpoint, in eval mode: architecture and objective from its hyperparameters, weights
        from its state. Read with torch.load(weights_only=True), and only this project's networks are built
        (`model.build`, by name), so nothing in the file can run code."""
        checkpoint = load_checkpoint(path, map_location)
        hparams, state = checkpoint.get("hyper_parameters"), checkpoint.get("state_dict")
        if not all(isinstance(x, dict) for x in (hparams, state)) or not all(
            isinstance(hparams.get(key), dict) for key in ("net", "objective")
        ):
            raise RunError(f"{path}: not a betavae checkpoint (no network, objective or state_dict in it)")
        module = cls(build(hparams["net"]), objective_from(hparams["objective"]), hparams["lr"])
        try:
            module.load_state_dict(state)
        except RuntimeError as err:  # torch's message: a header line, then one line per mismatched tensor
            detail = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), first_line(err))
            raise RunError(
                f"{path}: its weights do not fit the network its hyperparameters describe ({detail})"
            ) from None
        return module.to(map_location).eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, μ, log σ²) for flattened images."""
        return self.net(x)

    def progress(self, batch_idx: int) -> Progress:
        """Optimizer steps taken and epochs done (fractional) before training batch ``batch_idx``."""
        return Progress(self.global_step, self.current_epoch + batch_idx / max(1, self.trainer.num_training_batches))

    def _step(self, batch: Batch, stage: str, at: Progress | None = None) -> LossTerms:
        """Loss on one batch; its detached terms are kept for the epoch's exact means."""
        x, _ = batch
        mu, logvar = self.net.encode(x)
        z = self.net.reparameterize(mu, logvar)
        # The terms in float32 under any autocast precision: a bfloat16 sum over 784 pixels keeps 3 digits.
        logits, mu, logvar, z = (t.float() for t in (self.net.decode(z), mu, logvar, z))
        n = x.shape[0]
        recon, kl = self.net.nll(logits, x).sum() / n, gaussian_kl(mu, logvar).sum() / n
        if stage != "train" and getattr(self.objective, "batch_size", None):  # β-TCVAE: the loss comes at epoch end
            self._chunk_parts(stage, z, mu, logvar)
            terms = LossTerms(recon + kl, recon, kl)
            parts = KLParts(*torch.zeros(len(KLParts._fields), device=recon.device))  # summed from the chunks
        else:
            parts = self.objective.parts(z, mu, logvar)
            terms = LossTerms(self.objective(recon, kl, at, parts), recon, kl)
        self._batches.setdefault(stage, []).append((torch.stack([terms.loss, recon, kl, *(parts or ())]).detach(), n))
        return terms

    def _chunk_parts(self, stage: str, *samples: torch.Tensor) -> None:
        """Estimate the KL parts of (z, μ, log σ²) on chunks of the objective's batch size, in the order the images
        come, carrying the rest over to the next batch (`_epoch_chunks` takes it at the epoch's end)."""
        size = self.objective.batch_size
        if stage in self._carry:
            samples = tuple(torch.cat([old, new]) for old, new in zip(self._carry.pop(stage), samples, strict=True))
        full = len(samples[0]) - len(samples[0]) % size
        for start in range(0, full, size):
            self._add_chunk(stage, *(t[start : start + size] for t in samples))
        if full < len(samples[0]):
            self._carry[stage] = tuple(t[full:].detach() for t in samples)

    def _epoch_chunks(self, stage: str) -> list[tuple[torch.Tensor, int]]:
        """The epoch's chunks of KL-part means and sizes, the last (smaller) one made of what was carried."""
        if stage in self._carry:
            self._add_chunk(stage, *self._carry.pop(stage))
        return self._chunks.pop(stage, [])

    def _add_chunk(self, stage: str, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        """Keep one chunk's detached KL-part means and its size."""
        self._chunks.setdefault(stage, []).append(
            (torch.stack(list(self.objective.parts(z, mu, logvar))).detach(), len(z))
        )

    def _log_epoch(self, stage: str) -> None:
        """Log exact epoch means: sums over all images (across ranks) divided by the image count. Every rank
        takes part in the sum, also one that had no batch, or the others would wait for it."""
        batches, chunks = self._batches.pop(stage, []), self._epoch_chunks(stage)
        width = 3 + len(KLParts._fields) * self.objective.weighs_parts  # (loss, recon, kl[, mi, tc, dimwise_kl])
        totals = torch.zeros(width + 1, device=self.device)
        for rows, columns in ((batches, slice(0, width)), (chunks, slice(3, width))):
            if rows:
                means = torch.stack([terms for terms, _ in rows])  # [rows, columns]
                counts = means.new_tensor([n for _, n in rows])
                totals[columns] += counts @ means
        totals[width] = sum(n for _, n in batches)
        *sums, count = self.trainer.strategy.reduce(totals, reduce_op="sum").unbind()
        if not count:  # no rank had a batch
            return
        loss, recon, kl, *parts = (total / count for total in sums)
        if stage != "test":
            self._check_finite(f"{stage}/loss", f"epoch {self.trainer.current_epoch}", recon, kl)
        # Training's loss is the mean of what each step minimised; validation's and test's are the final objective
        # of the epoch's means (for β and β-TCVAE objectives the two agree; |KL − C| is not linear).
        if stage != "train":
            loss = self.objective(recon, kl, parts=KLParts(*parts) if parts else None)
        metrics = {f"{stage}/loss": loss, f"{stage}/recon": recon, f"{stage}/kl": kl}
        # The objective's minibatch estimates; the full-data MI, TC and dimension-wise KL are the latents family's.
        metrics |= {f"{stage}/{name}_batch": value for name, value in zip(KLParts._fields, parts, strict=False)}
        if stage == "test":
            metrics[f"{stage}/elbo"] = -(recon + kl)
        # Already summed over ranks; sync_dist only tells Lightning so (a mean of equal values).
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)

    @staticmethod
    def _check_finite(what: str, where: str, recon: torch.Tensor, kl: torch.Tensor) -> None:
        """Stop at a non-finite loss, naming where and which term: training on NaN only wastes the job, and the
        checkpoint of the last finished epoch stays the last finite one."""
        terms = (("recon", recon), ("KL", kl))
        bad = [f"{name} = {float(value)}" for name, value in terms if not torch.isfinite(value)]
        if bad:
            raise Diverged(f"diverged: non-finite {what} at {where} ({', '.join(bad)}); try a lower lr")

    def _check_training(self) -> None:
        """Stop if a training batch since the last check had a non-finite loss on any rank, naming the first such
        step: every rank stops together, with the same message. One host sync per call; called every
        `log_every_n_steps` batches and at the last batch of the epoch, so a divergence stops training before
        validation, the epoch's callbacks and its checkpoint."""
        batches = self._batches.get("train", [])
        recent = batches[self._checked :]
        self._checked = len(batches)
        if not recent:
            return
        terms = torch.stack([batch[:3] for batch, _ in recent])  # [batches, (loss, recon, kl)]
        bad = ~terms[:, 0].isfinite()
        first = bad.int().argmax()  # the first non-finite batch (0 when there is none)
        index = torch.where(bad[first], first, len(recent)).view(1).to(terms.dtype)
        found = torch.cat([index, terms[first, 1:], terms[-1, :1]])  # index or len(recent), its recon, KL; last loss
        if self.trainer.world_size > 1:
            gathered = self.all_gather(found)  # [ranks, 4]; ranks run the same steps
            found = gathered[gathered[:, 0].argmin()]
        index, recon, kl, self.last_loss = found.tolist()
        if index < len(recent):
            where = f"step {self.trainer.global_step - len(recent) + int(index)}, epoch {self.trainer.current_epoch}"
            self._check_finite("training loss", where, torch.tensor(recon), torch.tensor(kl))

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        terms = self._step(batch, "train", self.progress(batch_idx))
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(terms.loss)
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
        if getattr(self.objective, "dataset_size", 0) is None:  # β-TCVAE: its q(z) is over the training images
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
        checkpoint["rng_state"] = gather_objects(rng_state())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the saved RNG states for the first resumed epoch (the sanity check before it draws numbers)."""
        saved = checkpoint.get("rng_state")
        self._resumed_rng = saved if isinstance(saved, list) or saved is None else [saved]  # or one process's

    def on_train_start(self) -> None:
        """Train at the configured lr also when the resumed optimizer state holds another one (a checkpoint from
        another run, ckpt_path=): Adam's moments carry over, its lr does not."""
        for group in self.optimizers().optimizer.param_groups:
            group["lr"] = self.lr

    def on_train_epoch_start(self) -> None:
        self._checked = 0
        if self._resumed_rng is not None:
            if self.global_rank < len(self._resumed_rng):  # a process the checkpoint did not have keeps its seed
                set_rng_state(self._resumed_rng[self.global_rank])
            self._resumed_rng = None

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")
        schedule = self.objective.schedule(Progress(self.global_step, self.current_epoch + 1.0))
        self.log_dict({f"train/{name}": value for name, value in schedule.items()})

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=self.lr, fused=True)
