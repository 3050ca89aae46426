"""Metric callbacks: when the evaluation suite (`betavae.metrics.suite`) scores the tested checkpoint, and when the
validation statistics are logged; logged to every logger, written into the job directory. A metric family that
has no meaning on the data is left out, with one line in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl

from betavae.callbacks.publish import from_rank_zero, publish
from betavae.callbacks.schedule import AtFitEnd, due
from betavae.figures.draw import kl_per_dim_chart
from betavae.metrics.fid import FIDScorer
from betavae.metrics.latents import unit_counts
from betavae.metrics.suite import Suite
from betavae.model.module import BetaVAEModule
from betavae.model.networks import encode_all
from betavae.runs.layout import JobDir

log = logging.getLogger(__name__)


class TestScores(pl.Callback):
    """At test time, on rank 0: the job's evaluation suite on the tested checkpoint (every family of
    `betavae.metrics.registry` that is on for the test pass and applies to the data), its metrics logged on every rank,
    its arrays written into the job directory, its figures published. The families left out are said once,
    before any work, and a family the config insists on for data that cannot give it stops the job then."""

    def __init__(self, suite: Suite) -> None:
        self.suite, self.announced = suite, False
        self.notes: list[str] = []  # the tested checkpoint's, for the job's record (rank 0)

    def setup(self, trainer: pl.Trainer, pl_module: BetaVAEModule, stage: str) -> None:
        if not self.announced:
            for line in self.suite.announce(trainer.datamodule):
                log.info("%s", line)
            self.announced = True

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        data = trainer.datamodule
        tested = tested_images(trainer, data.size("test"))

        def compute() -> dict[str, float]:
            evaluation = self.suite.evaluate(pl_module.net, data, tested, pl_module.objective.label)
            JobDir(Path(trainer.default_root_dir)).write_arrays(evaluation.arrays)
            for name, image in evaluation.figures.items():
                publish(trainer, name, image)
            for note in evaluation.notes:
                log.warning("%s", note)
            self.notes = evaluation.notes
            return evaluation.metrics

        pl_module.log_dict(from_rank_zero(trainer, compute))


def tested_images(trainer: pl.Trainer, total: int) -> int:
    """How many of the test split's images (the first ones) the test pass saw, so the latent statistics are of
    the same images as test/kl (the decomposition sums to it): fewer under trainer.limit_test_batches on one
    process; all of them under DDP, whose processes test shards of the split."""
    if trainer.world_size > 1:
        return total
    return min(total, int(trainer.num_test_batches[0]) * trainer.datamodule.eval_batch_size)


class LatentStats(AtFitEnd):
    """Log `val/active_units` every epoch; draw the per-dimension KL chart every N epochs (0: only at the end)
    and at fit end. Its presence also turns on the test pass's `latents` family (active units and the KL's
    decomposition of the tested images), and ``probe`` the `probe` family (betavae.metrics.registry)."""

    def __init__(self, every_n_epochs: int = 5, probe: bool = True) -> None:
        self.every_n_epochs, self.probe = every_n_epochs, probe

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        posterior = encode_all(pl_module.net, trainer.datamodule.images("val")[0])
        pl_module.log_dict({f"val/{name}": value for name, value in unit_counts(posterior).items()})
        if due(trainer, self.every_n_epochs):
            chart = kl_per_dim_chart(posterior, pl_module.objective.label, trainer.current_epoch + 1)
            publish(trainer, "kl_per_dim", chart)

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if trainer.is_global_zero:
            posterior = encode_all(pl_module.net, trainer.datamodule.images("val")[0])
            chart = kl_per_dim_chart(posterior, pl_module.objective.label, trainer.current_epoch)
            publish(trainer, "kl_per_dim", chart)


class FIDMetrics(pl.Callback):
    """`val/fid` and `val/fid_std` every N epochs (0: never), against the validation images; the test pass's FID
    is the suite's (`fid` family)."""

    def __init__(self, scorer: FIDScorer, every_n_epochs: int = 0) -> None:
        self.scorer, self.every_n_epochs = scorer, every_n_epochs
        self.active = True

    def setup(self, trainer: pl.Trainer, pl_module: BetaVAEModule, stage: str) -> None:
        self.active = self.active and self.scorer.unfit(trainer.datamodule) is None  # TestScores says why not

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if self.active and not trainer.sanity_checking and due(trainer, self.every_n_epochs, last=True):
            images = trainer.datamodule.images("val")[0]

            def compute() -> dict[str, float]:
                return {f"val/{k}": v for k, v in self.scorer.scores(pl_module.net, images, recon=False).items()}

            pl_module.log_dict(from_rank_zero(trainer, compute))
