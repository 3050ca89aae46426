"""MLflow and W&B loggers that never stop training (`Tolerant`): Lightning's own logger classes, each made
tolerant; their packages (the mlflow and wandb extras) are imported only when one is built."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from typing import Any

import lightning.pytorch.loggers as lightning_loggers

from betavae.base.errors import first_line
from betavae.loggers import tracking

log = logging.getLogger(__name__)


class Tolerant:
    """A tracker that never stops training: the first call that fails gives its store up for the rest of this
    part, with one warning line; every later call is counted as missed, not made (`report` says so again)."""

    label = "logger"  # logger.<name> in the config, set by `make`
    down: str | None = None  # why the store was given up
    down_at: int | None = None  # the step it was given up at

    @property
    def missed(self) -> collections.Counter[str]:
        """Calls not made since the store was given up, by what they carried."""
        if "_missed" not in self.__dict__:
            self._missed: collections.Counter[str] = collections.Counter()
        return self._missed

    def send(self, what: str, call: Callable[[], Any], step: int | None = None) -> Any:
        """``call()`` unless the store was given up; if it fails, give the store up and say what is lost."""
        if self.down is not None:
            self.missed[what] += 1
            return None
        try:
            return call()
        except Exception as err:  # whatever the store or the network raised: training goes on without it
            self.down, self.down_at = first_line(err), step
            self.missed[what] += 1
            log.warning("%s (%s) stopped answering (%s): training goes on; the tracked run misses what follows, "
                        "which the job's TensorBoard events, figures/ and metrics.json keep", self.label,
                        self.store, self.down)  # fmt: skip
            return None

    @property
    def store(self) -> str:
        """Where the run lives (tracking.json's key for it)."""
        raise NotImplementedError

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """The Lightning logger's log_metrics (next in the class order), tolerantly."""
        method = super().log_metrics
        self.send("metric logs", lambda: method(metrics, step), step)

    def log_hyperparams(self, params: Any) -> None:
        """The Lightning logger's log_hyperparams, tolerantly."""
        method = super().log_hyperparams
        self.send("hyperparameter logs", lambda: method(params))

    def report(self) -> dict[str, Any] | None:
        """What this part could not send, as tracking.json records it (None: nothing was missed); says it too."""
        if self.down is None:
            return None
        missed = dict(self.missed)
        log.warning("%s (%s) was given up at step %s (%s): it missed %s", self.label, self.store, self.down_at,
                    self.down, ", ".join(f"{n} {what}" for what, n in missed.items()))  # fmt: skip
        return {"at_step": self.down_at, "reason": self.down, "calls": missed,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip


class MLFlowLogger(Tolerant, lightning_loggers.MLFlowLogger):
    """Lightning's MLFlowLogger, never stopping training (`Tolerant`)."""

    @property
    def store(self) -> str:
        return tracking.mlflow_store(self._tracking_uri)

    @property
    def name(self) -> str | None:
        """The experiment's id; None where the store failed before the run was made (asking would retry)."""
        return None if self.down is not None and not self._initialized else super().name

    @property
    def version(self) -> str | None:
        """The run's id, which Lightning's progress bar asks for at every refresh; None as `name`."""
        return None if self.down is not None and not self._initialized else super().version

    def finalize(self, status: str = "success") -> None:
        method = super().finalize
        self.send("the run's end", lambda: method(status))


class WandbLogger(Tolerant, lightning_loggers.WandbLogger):
    """Lightning's WandbLogger, never stopping training (`Tolerant`): offline by default; online, W&B syncs in
    the background, and only starting a run can wait (`tracking.SETTINGS`)."""

    @property
    def store(self) -> str:
        return tracking.wandb_store(self._offline)
