"""When callbacks run: the one every-N-epochs schedule every figure and metric callback shares, and fit end."""

from __future__ import annotations

import lightning.pytorch as pl


def due(trainer: pl.Trainer, every_n_epochs: int, last: bool = False) -> bool:
    """At an epoch's end: has a multiple of ``every_n_epochs`` epochs been done (0: never)? The final epoch
    counts only with ``last``, for callbacks whose fit-end hook does not already draw the final state."""
    epochs_done = trainer.current_epoch + 1
    if every_n_epochs <= 0 or epochs_done % every_n_epochs:
        return False
    return last or epochs_done < trainer.max_epochs


class AtFitEnd(pl.Callback):
    """Calls `at_fit_end` once per fit, while the module is still on its training device: at `on_train_end`, which
    Lightning calls before its teardown moves the module to the CPU (`on_fit_end` comes after that), or at
    `on_fit_end` when the fit loop did not run (a job continued from the last.ckpt of its final epoch)."""

    _trained = False

    def at_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """What to do with the model as fitting left it."""
        raise NotImplementedError

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trained = False

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._trained = True
        self.at_fit_end(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._trained:
            self.at_fit_end(trainer, pl_module)
