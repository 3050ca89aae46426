"""Metric callbacks: when `betavae.latents`, `betavae.fid` and `betavae.disentanglement` run during training,
logged to every logger. A metric that has no meaning on the data is off, with one line in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl

from betavae.disentanglement import DisentanglementScorer
from betavae.fid import FIDScorer
from betavae.figures import factor_information_chart, kl_per_dim_chart
from betavae.files import write_npz
from betavae.latents import active_units, encode_all, latent_metrics
from betavae.module import BetaVAEModule
from callbacks.publish import from_rank_zero, publish
from callbacks.schedule import AtFitEnd, due

log = logging.getLogger(__name__)


class LatentStats(AtFitEnd):
    """Log `val/active_units` every epoch; draw the per-dimension KL chart every N epochs (0: only at the end)
    and at fit end; at test time log, on the tested images, `test/active_units`, the KL's decomposition
    (`test/mi|tc|dimwise_kl`) and, with ``probe``, `test/probe_accuracy`."""

    def __init__(self, every_n_epochs: int = 5, probe: bool = True) -> None:
        self.every_n_epochs, self.probe = every_n_epochs, probe

    def setup(self, trainer: pl.Trainer, pl_module: BetaVAEModule, stage: str) -> None:
        data = trainer.datamodule
        if self.probe and not data.has_classes:
            log.info("No linear probe (test/probe_accuracy): data=%s has no classes", data.name)
            self.probe = False

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        posterior = encode_all(pl_module.net, trainer.datamodule.images("val")[0])
        pl_module.log("val/active_units", float(active_units(posterior)))
        if due(trainer, self.every_n_epochs):
            chart = kl_per_dim_chart(posterior, pl_module.objective.label, trainer.current_epoch + 1)
            publish(trainer, "kl_per_dim", chart)

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if trainer.is_global_zero:
            posterior = encode_all(pl_module.net, trainer.datamodule.images("val")[0])
            chart = kl_per_dim_chart(posterior, pl_module.objective.label, trainer.current_epoch)
            publish(trainer, "kl_per_dim", chart)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        data = trainer.datamodule
        images, labels = data.images("test")
        n = tested_images(trainer, len(images))

        def compute() -> dict[str, float]:
            return latent_metrics(pl_module.net, (images[:n], labels[:n]), data.images("train") if self.probe else None)

        pl_module.log_dict(from_rank_zero(trainer, compute))


def tested_images(trainer: pl.Trainer, total: int) -> int:
    """How many of the test split's images (the first ones) the test pass saw, so the latent statistics are of
    the same images as test/kl (the decomposition sums to it): fewer under trainer.limit_test_batches on one
    process; all of them under DDP, whose processes test shards of the split."""
    if trainer.world_size > 1:
        return total
    return min(total, int(trainer.num_test_batches[0]) * trainer.datamodule.eval_batch_size)


class FIDMetrics(pl.Callback):
    """`test/fid` (and `test/fid_recon`) of the tested checkpoint; `val/fid` every N epochs (0: never)."""

    def __init__(self, scorer: FIDScorer, every_n_epochs: int = 0) -> None:
        self.scorer, self.every_n_epochs = scorer, every_n_epochs
        self.active = True

    def setup(self, trainer: pl.Trainer, pl_module: BetaVAEModule, stage: str) -> None:
        if self.active and (reason := self.scorer.unfit(trainer.datamodule)):
            log.info("No FID: %s", reason)
            self.active = False

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not trainer.sanity_checking and due(trainer, self.every_n_epochs, last=True):
            self._log(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        self._log(trainer, pl_module, "test")

    def _log(self, trainer: pl.Trainer, pl_module: BetaVAEModule, split: str) -> None:
        """Score the split on rank 0 and log the scores on every rank."""
        if not self.active:
            return
        images = trainer.datamodule.images(split)[0]
        pl_module.log_dict(from_rank_zero(trainer, lambda: self.scorer.scores(pl_module.net, images, split)))


class DisentanglementMetrics(pl.Callback):
    """At test time, on data with known factors (`data=shapes`): the scores of the tested checkpoint as `test/mig`,
    `test/dci_disentanglement|completeness|informativeness`, `test/sap`, `test/factorvae_score` and
    `test/betavae_score`; the code-based scores' inputs in the job's disentanglement.npz; the latent × factor
    mutual information as figures/factor_information.png."""

    def __init__(self, scorer: DisentanglementScorer) -> None:
        self.scorer, self.active = scorer, True

    def setup(self, trainer: pl.Trainer, pl_module: BetaVAEModule, stage: str) -> None:
        if stage == "fit":  # once, before any work: refused in one line if the scores are asked of data without factors
            self.active = self.scorer.applies(trainer.datamodule)
            if not self.active:
                log.info("No disentanglement scores: data=%s has no ground-truth factors", trainer.datamodule.name)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not self.active:
            return

        def compute() -> dict[str, float]:
            scores = self.scorer.scores(pl_module.net, trainer.datamodule)
            write_npz(Path(trainer.default_root_dir) / "disentanglement.npz", scores.arrays)
            chart = factor_information_chart(scores.normalized_mi, scores.factor_names, pl_module.objective.label)
            publish(trainer, "factor_information", chart)
            return {f"test/{name}": value for name, value in scores.metrics.items()}

        pl_module.log_dict(from_rank_zero(trainer, compute))
