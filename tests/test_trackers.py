"""A tracking store that fails costs no training, and a job's tracked runs stay its own: real `mlflow server`s on
127.0.0.1 that are absent, killed mid-run and restarted; SQLite stores; W&B offline; real jobs and evaluate."""

import json
import multiprocessing
import subprocess
import sys
import time

import pytest

from betavae.loggers import job as loggers
from betavae.loggers import tracking
from betavae.loggers.trackers import Tolerant
from betavae.runs.names import job_dirname
from tests.helpers import EVALUATE_FEW, WITHOUT_FIGURES, MlflowServer, limits, run_module, strict_json

TINY = [*limits(train=3, val=1, test=1), *WITHOUT_FIGURES]
mlflow = pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")


class Failing(Tolerant):
    """A tracker whose store stops answering after ``works`` calls."""

    label, store = "logger.mlflow", "http://127.0.0.1:1"

    def __init__(self, works: int) -> None:
        self.works = works

    def call(self) -> str:
        self.works -= 1
        if self.works < 0:
            raise ConnectionError("Connection refused\nmore lines")
        return "sent"


def test_a_tracker_that_fails_is_given_up_once_and_counts_what_it_then_misses(caplog):
    tracker = Failing(works=1)
    assert tracker.send("metric logs", tracker.call, step=5) == "sent"
    assert tracker.send("metric logs", tracker.call, step=10) is None  # fails: given up
    for _ in range(3):
        tracker.send("images", tracker.call, step=11)
    assert tracker.works == -1  # no call was made after the failure
    assert tracker.missed == {"metric logs": 1, "images": 3}
    warnings = [r.getMessage() for r in caplog.records if "stopped answering" in r.getMessage()]
    assert warnings == ["logger.mlflow (http://127.0.0.1:1) stopped answering (Connection refused): training goes "
                        "on; the tracked run misses what follows, which the job's TensorBoard events, figures/ and "
                        "metrics.json keep"]  # fmt: skip
    report = tracker.report()
    assert (report["at_step"], report["reason"], report["calls"]) == (10, "Connection refused", tracker.missed)


@pytest.mark.slow  # MLflow's retries, 2 s apart
def test_a_store_that_is_not_there_is_found_out_within_seconds():
    server = MlflowServer(".")  # a free port nobody listens on
    start = time.monotonic()
    reason = tracking.probe("mlflow", server.uri)
    assert reason is not None
    assert "Connection refused" in reason or "Max retries" in reason
    assert time.monotonic() - start < 20


def test_tracking_json_of_0_6_is_read_as_one_run_per_logger_and_store(tmp_path):
    old = {"mlflow": {"logger": "mlflow", "tracking_uri": "http://h:5000", "run_id": "r1", "experiment_id": "1"},
           "wandb": {"logger": "wandb", "id": "w1", "project": "betavae", "dir": "d", "mode": "offline"}}  # fmt: skip
    (tmp_path / "tracking.json").write_text(json.dumps(old))
    runs = tracking.TrackedRuns(tmp_path)
    assert runs.get("mlflow", "http://h:5000") == {"run_id": "r1", "experiment_id": "1"}
    assert runs.get("wandb", "offline") == {"id": "w1", "project": "betavae", "dir": "d", "mode": "offline"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"mlflow": [1, 2', "not a JSON object of runs"),
        ('{"mlflow": {"sqlite:///m.db": {"run_id": 12345, "experiment_id": ["1"]}}}', "run_id, experiment_id not text"),
        ('{"mlflow": {"sqlite:///m.db": "abc"}}', "no run_id (MLflow) or id, dir and mode (W&B)"),
        ('{"mlflow": ["sqlite:///m.db"]}', "mlflow: not an object of stores"),
        ('{"wandb": {"offline": {"id": "w", "dir": "d", "mode": "sometimes"}}}', "mode 'sometimes' is neither"),
        ('{"mlflow": {"sqlite:///m.db": {"run_id": "r", "missed": [{"at": 1}]}}}', "missed is not a list of parts"),
        ('{"mlflow": {"logger": 3}}', "mlflow in offline: no run_id"),  # a pre-0.7.0 entry without its keys
    ],
)
def test_a_damaged_or_malformed_tracking_json_is_set_aside_with_a_warning_naming_what_is_wrong(
    tmp_path, caplog, text, problem
):
    (tmp_path / "tracking.json").write_text(text)
    runs = tracking.TrackedRuns(tmp_path)
    assert list(runs.entries()) == []
    (aside,) = tmp_path.glob("tracking.json.damaged-*")
    assert aside.read_text() == text
    assert f"set aside as {aside.name}" in caplog.text
    assert problem in caplog.text
    assert loggers.check_stores(tmp_path, "stop") == set()  # evaluate asks the stores of recorded runs: none


def test_no_logger_setting_is_part_of_a_jobs_directory_name():
    excluded = ["ckpt_path", "trainer", "logger", "logger.*"]
    overrides = ["beta=0.5", "logger=[tensorboard,mlflow]", "logger.mlflow.experiment_name=elsewhere",
                 "logger.wandb.project=p", "seed=1", "trainer=cpu"]  # fmt: skip
    assert job_dirname(overrides, excluded) == "beta=0.5,seed=1"


def open_store(uri):
    """Open a fresh SQLite store as a job does (its probe), returning the error if it failed."""
    return tracking.probe("mlflow", uri)


@pytest.mark.slow  # without the lock, one of each four processes fails every time here
def test_jobs_opening_one_fresh_sqlite_store_together_do_not_race_to_create_it(tmp_path):
    uris = [f"sqlite:///{tmp_path / f'store{i}'}/mlflow.db" for i in range(3)]
    for uri in uris:
        (tmp_path / uri.split("/")[-2]).mkdir()
    import mlflow.tracking  # noqa: F401  # imported once here: the forked processes start at once

    with multiprocessing.get_context("fork").Pool(4) as pool:
        for uri in uris:  # four processes at once on each fresh store
            assert pool.map(open_store, [uri] * 4) == [None] * 4


# Real jobs


@pytest.mark.slow
def test_a_store_that_does_not_answer_stops_the_job_in_one_line_or_is_skipped_when_asked(tmp_path, real_data_dir):
    dead = MlflowServer(tmp_path).uri
    run = tmp_path / "run"
    start = time.monotonic()
    stopped = run_module("betavae.train", *TINY, "logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={dead}",
                         f"hydra.run.dir={run}", check=False)  # fmt: skip
    assert time.monotonic() - start < 40
    assert stopped.returncode == 1
    assert "Traceback" not in stopped.stderr
    line = stopped.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: logger.mlflow: its tracking store {dead} does not answer (")
    assert line.endswith("); start it, or train without it: tracking_unreachable=skip")
    assert not (run / "checkpoints").exists()
    run_module("betavae.train", *TINY, "trainer.max_epochs=1", "logger=[tensorboard,mlflow]",
               f"logger.mlflow.tracking_uri={dead}", "tracking_unreachable=skip", f"hydra.run.dir={run}")  # fmt: skip
    assert strict_json(run / "metrics.json")["status"] == "ok"
    assert "this part of the job goes on without it (tracking_unreachable=skip)" in (run / "train.log").read_text()
    assert not (run / "tracking.json").exists()


@pytest.mark.slow
def test_a_store_killed_mid_run_costs_no_training_and_a_continuation_says_what_the_run_misses(tmp_path, real_data_dir):
    server = MlflowServer(tmp_path / "server").start()
    run = tmp_path / "run"
    logged = ["logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={server.uri}"]
    # the server dies as epoch 1 starts, after a checkpoint
    kill = ["+callbacks.kill._target_=tests.faults.KillsAtEpoch", f"+callbacks.kill.pid={server.process.pid}",
            "+callbacks.kill.epoch=1", f"+callbacks.kill.record={tmp_path / 'killed'}"]  # fmt: skip
    try:
        run_module("betavae.train", *TINY, "trainer.limit_train_batches=20", "trainer.max_epochs=4", *logged, *kill,
                   f"hydra.run.dir={run}")  # fmt: skip
    finally:
        server.kill()
    killed = float((tmp_path / "killed").read_text())
    assert time.monotonic() - killed < 60  # 3 epochs of 20 batches and the test pass: about 6 s here
    log = (run / "train.log").read_text()
    assert log.count("stopped answering") == 1
    assert "was given up at step" in log
    assert strict_json(run / "metrics.json")["status"] == "ok"
    (entry,) = strict_json(run / "tracking.json")["mlflow"].values()
    assert entry["missed"][0]["calls"]["metric logs"] >= 1

    server.start()  # back, with its store: the job continues into the same run, which is told what it misses
    try:
        run_module("betavae.train", *TINY, "trainer.limit_train_batches=20", "trainer.max_epochs=5", *logged,
                   f"hydra.run.dir={run}")  # fmt: skip
        client = mlflow.tracking.MlflowClient(server.uri)
        history = client.get_metric_history(entry["run_id"], "train/loss")
    finally:
        server.kill()
    assert "misses what 1 earlier part(s) could not send, from step" in (run / "train.log").read_text()
    assert max(point.step for point in history) == 5 * 20 - 1  # the continued epoch reached the run
    assert strict_json(run / "tracking.json")["mlflow"][server.uri]["run_id"] == entry["run_id"]

    start = time.monotonic()  # evaluate while the store is down: that run fails in one line, quickly
    refused = run_module("betavae.evaluate", f"run_dir={run}", *EVALUATE_FEW, check=False)
    assert time.monotonic() - start < 60
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert f"logger.mlflow: its tracking store {server.uri} does not answer" in refused.stderr.strip().splitlines()[-1]
    assert not (run / "evaluation.json").exists()
    run_module("betavae.evaluate", f"run_dir={run}", *EVALUATE_FEW, "tracking_unreachable=skip")
    assert (run / "evaluation.json").exists()


@pytest.mark.slow
def test_a_jobs_tracked_runs_stay_its_own_across_parts_loggers_and_stores(tmp_path, real_data_dir):
    pytest.importorskip("wandb", reason="needs the wandb extra: pip install -e '.[wandb]'")
    run, first, second = tmp_path / "run", f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    parts = [("mlflow", first), ("wandb", None), ("mlflow", second), ("mlflow", first)]
    for epochs, (logger, store) in enumerate(parts, start=1):
        where = [f"logger.mlflow.tracking_uri={store}"] if store else []
        run_module("betavae.train", *TINY, f"trainer.max_epochs={epochs}", f"logger=[tensorboard,{logger}]", *where,
                   f"hydra.run.dir={run}")  # fmt: skip
    runs = strict_json(run / "tracking.json")
    assert sorted(runs) == ["mlflow", "wandb"]
    assert sorted(runs["mlflow"]) == sorted([first, second])
    for store, parts_there in ((first, 2), (second, 1)):
        client = mlflow.tracking.MlflowClient(store)
        (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert found.info.run_id == runs["mlflow"][store]["run_id"]
        steps = {point.step for point in client.get_metric_history(found.info.run_id, "train/loss")}
        assert len(steps) == parts_there  # one epoch a part, all in the one run


@pytest.mark.slow
def test_a_recorded_run_the_store_no_longer_has_gets_one_line_and_a_new_run(tmp_path, real_data_dir):
    run, store = tmp_path / "run", f"sqlite:///{tmp_path}/a.db"
    run.mkdir()
    (run / "tracking.json").write_text(json.dumps({"mlflow": {store: {"run_id": "0" * 32, "experiment_id": "1"}}}))
    run_module("betavae.train", *TINY, "trainer.max_epochs=1", "logger=[tensorboard,mlflow]",
               f"logger.mlflow.tracking_uri={store}", f"hydra.run.dir={run}")  # fmt: skip
    assert f"tracking.json's run {'0' * 32} is not in {store}" in (run / "train.log").read_text()
    assert strict_json(run / "tracking.json")["mlflow"][store]["run_id"] != "0" * 32


@pytest.mark.slow
def test_evaluate_without_the_mlflow_package_fails_each_tracked_run_in_one_line_and_goes_on(tmp_path, real_data_dir):
    root, store = tmp_path / "sweep", f"sqlite:///{tmp_path}/a.db"
    run_module("betavae.train", "-m", "beta=0.1,1.0", *TINY, "trainer.max_epochs=1", "logger=[tensorboard,mlflow]",
               f"logger.mlflow.tracking_uri={store}", f"hydra.sweep.dir={root}")  # fmt: skip
    before = (root / "summary.md").stat().st_mtime_ns
    result = run_module("betavae.evaluate", f"sweep_dir={root}", *EVALUATE_FEW, check=False, without="mlflow")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: 2 of 2 runs could not be evaluated:")
    assert line.count("and the mlflow package is missing: pip install 'betavae[mlflow]'") == 2
    assert (root / "summary.md").stat().st_mtime_ns > before


@pytest.mark.slow
def test_evaluate_never_makes_a_recorded_store_again_and_a_store_that_lost_the_run_costs_only_the_tracked_run(
    tmp_path, real_data_dir
):
    run, database = tmp_path / "run", tmp_path / "a.db"
    run_module("betavae.train", *TINY, "trainer.max_epochs=1", "logger=[tensorboard,mlflow]",
               f"logger.mlflow.tracking_uri=sqlite:///{database}", f"hydra.run.dir={run}")  # fmt: skip
    database.unlink()
    evaluate = ["betavae.evaluate", f"run_dir={run}", *EVALUATE_FEW]
    refused = run_module(*evaluate, check=False)
    assert refused.returncode == 1
    assert f"its SQLite file {database} does not exist" in refused.stderr.strip().splitlines()[-1]
    assert not database.exists()
    assert not (run / "evaluation.json").exists()
    again = f"import mlflow; mlflow.tracking.MlflowClient('sqlite:///{database}').search_experiments()"
    subprocess.run([sys.executable, "-c", again], check=True)  # a store again, without the run (MLflow keeps an
    # engine per URI in a process, on the deleted file: a new process makes the new file as a user's would)
    evaluated = run_module(*evaluate, check=False)
    assert evaluated.returncode == 0
    assert (run / "evaluation.json").exists()
    assert "evaluated (evaluation.json written); its tracked run misses the results" in evaluated.stdout
