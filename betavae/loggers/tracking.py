"""A job's tracked runs (MLflow, W&B): tracking.json records each logger's run in each store it has logged to, so
that every part of a job and evaluate log to the same runs; and tracking stores are asked, before any work,
whether they answer, with MLflow's and W&B's own timeouts and retries set short, so a store that is down or dies
costs a job seconds, never its training."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from betavae.base.errors import first_line
from betavae.base.files import read_json, write_json
from betavae.runs.layout import JobDir

log = logging.getLogger(__name__)
PROBE_TIMEOUT_S = 5
# MLflow's HTTP calls: 5 s per attempt, 2 retries after 0 and 2 s (urllib3's backoff, factor 1) and up to 1 s of
# jitter each: a store that does not answer costs one call at most 3 × 5 + 2 + 2 = 19 s (a refused connection
# about 3 s), and is then given up for the rest of the part. MLflow's defaults: 120 s, 7 retries, factor 2.
# W&B: 30 s to start a run online (its default is 90); online runs sync in the background without blocking.
SETTINGS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "WANDB_INIT_TIMEOUT": "30"}  # fmt: skip


def use_short_timeouts() -> None:
    """Set MLflow's and W&B's timeouts and retries (`SETTINGS`) in this process, unless the user has set them."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)


def mlflow_store(uri: str) -> str:
    """An MLflow tracking URI as tracking.json records it."""
    return str(uri)


def wandb_store(offline: bool) -> str:
    """Where a W&B run lives: "offline" (the job's wandb/ directory) or the server's base URL."""
    return "offline" if offline else os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")


@contextlib.contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """Hold an flock beside a SQLite store while it is opened, so jobs starting together on a fresh store do not
    race to create its tables (one of them failed); a no-op for other stores."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    path = Path(uri.removeprefix("sqlite:///") + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def probe(kind: str, store: str, create: bool = True) -> str | None:
    """Why a tracking store does not answer, within seconds; None when it does. MLflow: one search of its
    experiments (a SQLite store is created now, under `sqlite_lock`, unless ``create`` is false: a store a job
    recorded and that is gone is not made again empty); W&B online: its server's URL."""
    use_short_timeouts()
    database = Path(store.removeprefix("sqlite:///"))
    if kind == "mlflow" and not create and store.startswith("sqlite:///") and not database.is_file():
        return f"its SQLite file {database} does not exist"
    try:
        if kind == "mlflow":
            from mlflow.tracking import MlflowClient

            with sqlite_lock(store):
                MlflowClient(store).search_experiments(max_results=1)
        elif kind == "wandb" and store != "offline":
            urllib.request.urlopen(store, timeout=PROBE_TIMEOUT_S)
    except urllib.error.HTTPError:
        return None  # it answered
    except Exception as err:  # a refused connection, a timeout, a broken store: any means "does not answer"
        return first_line(err)
    return None


def upgraded(entry: Any) -> Any:
    """A logger's entry as this version records it: one written before 0.7.0 (one run per logger) as one store."""
    if isinstance(entry, dict) and "logger" in entry:
        entry = dict(entry)
        store = entry.pop("tracking_uri") if entry["logger"] == "mlflow" else entry.get("mode", "offline")
        entry.pop("logger")
        return {store if store != "online" else wandb_store(False): entry}
    return entry


TEXT = {"run_id": str, "experiment_id": str, "id": str, "dir": str}  # what reopens a run, where present


def schema_problem(runs: Any) -> str | None:
    """What makes tracking.json's runs unusable, in a few words (None: nothing): every reader relies on each
    logger mapping stores to entries, an MLflow entry having a text run_id, a W&B entry a text id, dir and mode,
    and each "missed" part a step and a reason."""
    for name, stores in runs.items():
        if not isinstance(stores, dict):
            return f"{name}: not an object of stores"
        for store, entry in stores.items():
            where = f"{name} in {store}"
            if not isinstance(entry, dict) or not ({"run_id"} <= entry.keys() or {"id", "dir", "mode"} <= entry.keys()):
                return f"{where}: no run_id (MLflow) or id, dir and mode (W&B)"
            if wrong := [k for k, kind in TEXT.items() if k in entry and not isinstance(entry[k], kind)]:
                return f"{where}: {', '.join(wrong)} not text"
            if "mode" in entry and entry["mode"] not in ("offline", "online"):
                return f"{where}: mode {entry['mode']!r} is neither offline nor online"
            if not isinstance(entry.get("project", ""), str | None):
                return f"{where}: project not text"
            missed = entry.get("missed", [])
            if not isinstance(missed, list) or not all(isinstance(m, dict) and "at_step" in m and "reason" in m
                                                       for m in missed):  # fmt: skip
                return f"{where}: missed is not a list of parts with at_step and reason"
    return None


class TrackedRuns:
    """tracking.json: {logger name: {store: {what reopens the run (run_id, experiment_id; or id, project, dir,
    mode), and "missed": what a part could not send}}}. A damaged file is set aside with a warning, as damaged
    checkpoints are; one written before 0.7.0 (one run per logger) is read as this layout."""

    def __init__(self, run_dir: Path) -> None:
        self.path = JobDir(Path(run_dir)).tracking
        self.runs: dict[str, dict[str, dict[str, Any]]] = {}
        if not self.path.exists():
            return
        data = read_json(self.path)
        try:
            runs = {name: upgraded(entry) for name, entry in data.items()} if isinstance(data, dict) else None
        except (KeyError, TypeError, AttributeError):
            runs = None
        if (problem := "not a JSON object of runs" if runs is None else schema_problem(runs)) is not None:
            aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.replace(aside)
            log.warning("%s: unreadable (%s), set aside as %s; the job's loggers start new runs", self.path,
                        problem, aside.name)  # fmt: skip
            return
        self.runs = runs

    def get(self, name: str, store: str) -> dict[str, Any] | None:
        """What reopens logger ``name``'s run in ``store``, if the job has one there."""
        return self.runs.get(name, {}).get(store)

    def set(self, name: str, store: str, entry: dict[str, Any]) -> None:
        """Record logger ``name``'s run in ``store``; its runs in other stores, and other loggers' runs, stay."""
        self.runs.setdefault(name, {})[store] = entry

    def entries(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every recorded run: (logger name, store, entry)."""
        for name, stores in self.runs.items():
            for store, entry in stores.items():
                yield name, store, entry

    def write(self) -> None:
        """Write tracking.json (atomically), if it records any run."""
        if self.runs:
            write_json(self.path, self.runs)
