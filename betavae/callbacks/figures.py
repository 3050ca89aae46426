"""Figure callbacks: when to draw each figure of `betavae.figures` during training."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from betavae.callbacks.publish import log_scalars, publish, publish_json
from betavae.callbacks.schedule import AtFitEnd, due
from betavae.figures import draw as figures
from betavae.metrics import registry
from betavae.model.module import BetaVAEModule


class FigureCallback(AtFitEnd):
    """Draw figure ``name`` of `betavae.figures.draw` with its settings (betavae/conf/figures/) every
    ``every_n_epochs`` epochs (0: only when fitting ends) and when fitting ends."""

    name = "figure"

    def __init__(self, every_n_epochs: int, **settings: Any) -> None:
        self.every_n_epochs, self.settings = every_n_epochs, settings

    def _publish(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if trainer.is_global_zero:
            image, _ = figures.draw(self.name, pl_module.net, trainer.datamodule, pl_module.objective.label,
                                    **self.settings)  # fmt: skip
            publish(trainer, self.name, image)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if due(trainer, self.every_n_epochs):
            self._publish(trainer, pl_module)

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        self._publish(trainer, pl_module)


class Reconstructions(FigureCallback):
    """`figures.reconstructions` of the test images, ``per_class`` of each group."""

    name = "reconstructions"


class PriorSamples(FigureCallback):
    """`figures.prior_samples`: the same seeded codes every time."""

    name = "prior_samples"


class Interpolation(FigureCallback):
    """`figures.interpolation` between test images of the given group pairs."""

    name = "interpolation"


class LatentTraversal(FigureCallback):
    """`figures.latent_traversal` around one test image, dimensions ranked by KL on the validation images."""

    name = "latent_traversal"


class FrozenSigma(AtFitEnd):
    """At fit end: `figures.frozen_sigma`, its statistics as figures/frozen_sigma.json and `frozen_sigma/*`
    scalars."""

    def __init__(self, **settings: Any) -> None:
        self.settings = settings

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not trainer.is_global_zero:
            return
        image, stats = figures.draw("frozen_sigma", pl_module.net, trainer.datamodule, pl_module.objective.label,
                                    **self.settings)  # fmt: skip
        publish(trainer, "frozen_sigma", image)
        publish_json(trainer, "frozen_sigma", stats)
        log_scalars(
            trainer,
            {f"frozen_sigma/{k}_sigma_{s}": v[k] for s, v in stats.items() for k in ("mean_intensity", "diversity")},
        )


class TrainingCurves(AtFitEnd):
    """Collect each epoch's logged `train/*` and `val/*` means; draw `figures.training_curves` at fit end. The
    history travels in checkpoints, so a resumed run draws every epoch."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def _record(self, trainer: pl.Trainer, epochs_done: int) -> None:
        """Keep the last finished epoch's logged values (they reach callback_metrics after its end hooks)."""
        logged = {k: float(v) for k, v in trainer.callback_metrics.items() if k.split("/")[0] in ("train", "val")}
        if (
            registry.TRAIN_LOSS in logged
            and epochs_done > 0
            and (not self.history or self.history[-1]["epoch"] < epochs_done)
        ):
            self.history.append({"epoch": epochs_done, **logged})

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        self._record(trainer, trainer.current_epoch)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: BetaVAEModule, checkpoint: dict[str, Any]) -> None:
        # Checkpoints are written after the epoch's end hooks, so its values are final; state_dict ran before.
        self._record(trainer, trainer.current_epoch + 1)
        checkpoint["callbacks"][self.state_key] = self.state_dict()

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict["history"])

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        self._record(trainer, trainer.current_epoch)
        if trainer.is_global_zero and self.history:
            publish(trainer, "training_curves", figures.training_curves(self.history, pl_module.objective.label))
