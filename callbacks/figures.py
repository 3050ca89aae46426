"""Figure callbacks: when to draw each figure of `betavae.figures` during training."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np

from betavae import figures
from betavae.module import BetaVAEModule
from callbacks.publish import log_scalars, publish, publish_json
from callbacks.schedule import AtFitEnd, due


class FigureCallback(AtFitEnd):
    """Draw ``name`` every ``every_n_epochs`` epochs (0: only when fitting ends) and when fitting ends; what each
    figure shows is set in conf/figures/."""

    name = "figure"

    def __init__(self, every_n_epochs: int) -> None:
        self.every_n_epochs = every_n_epochs

    def draw(self, module: BetaVAEModule, datamodule: pl.LightningDataModule) -> np.ndarray:
        """The figure of the module's current state."""
        raise NotImplementedError

    def _publish(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if trainer.is_global_zero:
            publish(trainer, self.name, self.draw(pl_module, trainer.datamodule))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if due(trainer, self.every_n_epochs):
            self._publish(trainer, pl_module)

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        self._publish(trainer, pl_module)


class Reconstructions(FigureCallback):
    """`figures.reconstructions` of the test images."""

    name = "reconstructions"

    def __init__(self, every_n_epochs: int, per_class: int) -> None:
        super().__init__(every_n_epochs)
        self.per_class = per_class

    def draw(self, module: BetaVAEModule, datamodule: pl.LightningDataModule) -> np.ndarray:
        return figures.reconstructions(module.net, *datamodule.grouped("test"), per_class=self.per_class)


class PriorSamples(FigureCallback):
    """`figures.prior_samples`: the same seeded codes every time."""

    name = "prior_samples"

    def __init__(self, every_n_epochs: int, num_samples: int, seed: int) -> None:
        super().__init__(every_n_epochs)
        self.num_samples, self.seed = num_samples, seed

    def draw(self, module: BetaVAEModule, datamodule: pl.LightningDataModule) -> np.ndarray:
        return figures.prior_samples(module.net, self.num_samples, self.seed)


class Interpolation(FigureCallback):
    """`figures.interpolation` between test images of the given class pairs."""

    name = "interpolation"

    def __init__(self, every_n_epochs: int, pairs: Sequence[Sequence[int]], steps: int) -> None:
        super().__init__(every_n_epochs)
        self.pairs, self.steps = [tuple(p) for p in pairs], steps

    def draw(self, module: BetaVAEModule, datamodule: pl.LightningDataModule) -> np.ndarray:
        return figures.interpolation(module.net, *datamodule.grouped("test"), pairs=self.pairs, steps=self.steps)


class LatentTraversal(FigureCallback):
    """`figures.latent_traversal` around one test image, dimensions ranked by KL on the validation images."""

    name = "latent_traversal"

    def __init__(self, every_n_epochs: int, num_dims: int, steps: int, span: float, image_index: int) -> None:
        super().__init__(every_n_epochs)
        self.num_dims, self.steps, self.span, self.image_index = num_dims, steps, span, image_index

    def draw(self, module: BetaVAEModule, datamodule: pl.LightningDataModule) -> np.ndarray:
        image = datamodule.images("test")[0][self.image_index]
        ranking, labels = datamodule.images("val")
        factors = (labels.cpu().numpy(), [f.name for f in datamodule.factors]) if datamodule.factors else None
        return figures.latent_traversal(module.net, ranking, image, self.num_dims, self.steps, self.span, factors)


class FrozenSigma(AtFitEnd):
    """At fit end: `figures.frozen_sigma`, its statistics as figures/frozen_sigma.json and `frozen_sigma/*`
    scalars."""

    def __init__(self, sigmas: Sequence[float], num_samples: int, grid_samples: int, seed: int) -> None:
        self.sigmas, self.num_samples, self.grid_samples, self.seed = list(sigmas), num_samples, grid_samples, seed

    def at_fit_end(self, trainer: pl.Trainer, pl_module: BetaVAEModule) -> None:
        if not trainer.is_global_zero:
            return
        image, stats = figures.frozen_sigma(
            pl_module.net, pl_module.objective.label, self.sigmas, self.num_samples, self.grid_samples, self.seed
        )
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
        if "train/loss" in logged and epochs_done > 0 and (not self.history or self.history[-1]["epoch"] < epochs_done):
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
