"""MLflow and W&B loggers that never stop training (`Tolerant`): Lightning's own logger classes, each made
tolerant and owning what it does beyond scalars (`kinds.Kind`); their packages (the mlflow and wandb extras) are
imported only when one is built."""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch.loggers as lightning_loggers
import numpy as np
from omegaconf import DictConfig

from betavae.base.errors import first_line
from betavae.loggers import tracking
from betavae.loggers.kinds import Kind
from betavae.loggers.tracking import TrackedRuns

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

    def record_missed(self, name: str, runs: TrackedRuns) -> None:
        """Record in ``runs`` what this part could not send (`report`), where the job records its run."""
        if (missed := self.report()) and runs.get(name, self.store):
            runs.get(name, self.store).setdefault("missed", []).append(missed)

    def report(self) -> dict[str, Any] | None:
        """What this part could not send, as tracking.json records it (None: nothing was missed); says it too."""
        if self.down is None:
            return None
        missed = dict(self.missed)
        log.warning("%s (%s) was given up at step %s (%s): it missed %s", self.label, self.store, self.down_at,
                    self.down, ", ".join(f"{n} {what}" for what, n in missed.items()))  # fmt: skip
        return {"at_step": self.down_at, "reason": self.down, "calls": missed,
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}  # fmt: skip


class MLFlowLogger(Tolerant, Kind, lightning_loggers.MLFlowLogger):
    """Lightning's MLFlowLogger, never stopping training (`Tolerant`)."""

    extra = "mlflow"

    @classmethod
    def configured_store(cls, node: DictConfig) -> str:
        return tracking.mlflow_store(node.tracking_uri)

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

    def publish_image(self, name: str, image: np.ndarray, step: int) -> None:
        """An image artifact at ``step``."""
        self.send("images", lambda: self.experiment.log_image(self.run_id, image, key=name, step=step), step)

    def publish_file(self, path: Path) -> None:
        """An artifact of the run."""
        self.send("files", lambda: self.experiment.log_artifact(self.run_id, str(path)))

    def publish_results(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Its params (its test metrics are logged at their step already); params are write-once: one a continued
        run changed (trainer.max_epochs) keeps its first value and the run gets a tag with the new."""
        self.send("hyperparameter logs", lambda: self.log_params(hparams))

    def log_params(self, hparams: dict[str, Any]) -> None:
        """Log the params MLflow does not have yet; tag those a continued run changed."""
        logged = self.experiment.get_run(self.run_id).data.params
        changed = {k: str(v) for k, v in hparams.items() if k in logged and logged[k] != str(v)}
        self.log_hyperparams({k: v for k, v in hparams.items() if k not in changed})
        for key, value in changed.items():
            self.experiment.set_tag(self.run_id, key, value)

    def record_run(self, name: str, runs: TrackedRuns) -> None:
        """Its run's id and experiment (creating the run now)."""
        if self.send("the run's start", lambda: self.run_id):
            entry = runs.get(name, self.store) or {}
            runs.set(name, self.store, {**entry, "run_id": self.run_id, "experiment_id": self.experiment_id})


class WandbLogger(Tolerant, Kind, lightning_loggers.WandbLogger):
    """Lightning's WandbLogger, never stopping training (`Tolerant`): offline by default; online, W&B syncs in
    the background, and only starting a run can wait (`tracking.SETTINGS`)."""

    extra = "wandb"

    @classmethod
    def configured_store(cls, node: DictConfig) -> str:
        return tracking.wandb_store(bool(node.get("offline", False)))

    @property
    def store(self) -> str:
        return tracking.wandb_store(self._offline)

    def publish_image(self, name: str, image: np.ndarray, step: int) -> None:
        """A media panel at ``step``."""
        self.send("images", lambda: self.log_image(key=name, images=[image], step=step), step)

    def publish_file(self, path: Path) -> None:
        """A run file."""
        self.send("files", lambda: self.experiment.save(str(path), base_path=str(Path(path).parent), policy="now"))

    def publish_results(self, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
        """Its config, and the test metrics in its run summary."""
        self.log_hyperparams(hparams)
        self.send("the run summary", lambda: self.experiment.summary.update(metrics))

    def end_run(self, status: str) -> None:
        """Finish the run, which would otherwise stay the process's active run and take the next job's logging in
        a multirun."""
        if self._experiment is not None:
            self.send("the run's end", lambda: self.experiment.finish(exit_code=int(status != "success")))

    def record_run(self, name: str, runs: TrackedRuns) -> None:
        """Its id, project, directory and mode (offline or online)."""
        mode = "offline" if self._offline else "online"
        entry = {**(runs.get(name, self.store) or {}), "id": self._id, "project": self._project}
        runs.set(name, self.store, {**entry, "dir": self.save_dir, "mode": mode})
