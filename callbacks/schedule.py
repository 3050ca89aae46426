"""When periodic callbacks run: the one schedule every figure and metric callback shares."""

from __future__ import annotations

import lightning.pytorch as pl


def due(trainer: pl.Trainer, every_n_epochs: int, last: bool = False) -> bool:
    """At an epoch's end: has a multiple of ``every_n_epochs`` epochs been done (0: never)? The final epoch
    counts only with ``last``, for callbacks whose fit-end hook does not already draw the final state."""
    epochs_done = trainer.current_epoch + 1
    if every_n_epochs <= 0 or epochs_done % every_n_epochs:
        return False
    return last or epochs_done < trainer.max_epochs
