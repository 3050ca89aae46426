"""Every logger gets the whole run: real MLflow (a server started on 127.0.0.1) and real W&B (offline, read back
from its own run files) against the job's TensorBoard run, through real Hydra multiruns on real Fashion-MNIST."""

import json
import struct
import tempfile
from pathlib import Path

import pytest

from tests.helpers import EVALUATE_FEW, MlflowServer, limits, run_module, scalars, strict_json

pytestmark = pytest.mark.slow
FEW_BATCHES_SMALL_FIGURES = [*limits(train=3, val=1, test=1), "callbacks.latent_evolution.per_class=20",
                             "callbacks.latent_stats.probe=false", "fid=none"]  # fmt: skip


def tensorboard_scalars(job):
    """{tag: points} of a job's TensorBoard run, without the copies of the test metrics at step 0 that
    TensorBoard's HPARAMS tab is written with (a test pass is never at step 0)."""
    series = scalars(job)[1]
    return {tag: [p for p in points if not (tag.startswith("test/") and p.step == 0)] for tag, points in series.items()}


def evaluations(job):
    """The job's evaluation.json ({} where evaluate did not run)."""
    path = job / "evaluation.json"
    return strict_json(path) if path.exists() else {}


def evaluation(job, tag):
    """[the value of ``tag`` in the job's evaluation.json], or [] where evaluate did not run or give it."""
    found = evaluations(job)
    return [found[tag]] if tag in found else []


def tensorboard_images(job):
    """{tag: [steps]} of the images in a job's TensorBoard run."""
    events = scalars(job)[0]
    return {tag: [image.step for image in events.Images(tag)] for tag in events.Tags()["images"]}


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on 127.0.0.1 (tests.helpers.MlflowServer), stopped at the module's end."""
    pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")
    server = MlflowServer(tmp_path_factory.mktemp("server")).start()
    yield server.uri
    server.kill()


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, real_data_dir, mlflow_server):
    """A 2-job sweep logged to TensorBoard, the MLflow server and W&B (offline); then its first job continued
    for a second epoch and evaluated. Returns the job directories."""
    pytest.importorskip("wandb", reason="needs the wandb extra: pip install -e '.[wandb]'")
    root = tmp_path_factory.mktemp("tracked") / "sweep"
    overrides = [
        *FEW_BATCHES_SMALL_FIGURES,
        "logger=[tensorboard,mlflow,wandb]",
        f"logger.mlflow.tracking_uri={mlflow_server}",
    ]
    run_module("betavae.train", "-m", "beta=0.1,1.0", "trainer.max_epochs=1", *overrides, f"hydra.sweep.dir={root}")
    jobs = sorted(root.glob("beta=*"))
    first_ids = strict_json(jobs[0] / "tracking.json")
    run_module("betavae.train", "beta=0.1", "trainer.max_epochs=2", *overrides, f"hydra.run.dir={jobs[0]}")
    run_module("betavae.evaluate", f"run_dir={jobs[0]}", *EVALUATE_FEW)
    assert strict_json(jobs[0] / "tracking.json") == first_ids  # the continued job kept its runs
    return jobs


def test_mlflow_has_one_run_per_job_with_every_scalar_figure_hparam_and_file_kept_through_resume_and_evaluate(
    tracked, mlflow_server
):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    (experiment,) = [e for e in client.search_experiments() if e.name == "betavae"]
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == [job.name for job in tracked]  # one run per job, named as its directory
    for job in tracked:
        run = client.get_run(runs[job.name].info.run_id)
        assert strict_json(job / "tracking.json")["mlflow"][mlflow_server]["run_id"] == run.info.run_id
        assert run.data.tags["sweep"] == str(job.parent)
        assert run.info.status == "FINISHED"
        assert float(run.data.params["beta"]) == strict_json(job / "metrics.json")["weight"]["beta"]
        assert run.data.params["likelihood"] == "Bernoulli"
        assert run.data.params["max_epochs"] == "1"
        for tag, points in tensorboard_scalars(job).items():  # every TensorBoard scalar, at its steps, with its values
            history = client.get_metric_history(run.info.run_id, tag)
            history, evaluated = history[: len(points)], history[len(points) :]  # then evaluate's, if any
            assert [m.step for m in history] == [p.step for p in points], tag
            assert [m.value for m in history] == pytest.approx([p.value for p in points], rel=1e-6), tag
            assert [m.value for m in evaluated] == [pytest.approx(v) for v in evaluation(job, tag)], tag
        images = [a.path.split("/")[1] for a in client.list_artifacts(run.info.run_id, "images")]
        logged = {(name.split("+")[0], int(name.split("+")[2])) for name in images if name.endswith(".png")}
        assert logged == {(tag, step) for tag, steps in tensorboard_images(job).items() for step in steps}
        assert {"metrics.json", "latent_evolution.gif"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
        with tempfile.TemporaryDirectory() as copy:
            path = client.download_artifacts(run.info.run_id, "metrics.json", copy)
            assert strict_json(Path(path)) == strict_json(job / "metrics.json")  # the file, as last written

    continued = client.get_run(runs[tracked[0].name].info.run_id)  # two epochs, in one run
    assert len(client.get_metric_history(continued.info.run_id, "train/loss")) == 2
    assert (continued.data.params["max_epochs"], continued.data.tags["max_epochs"]) == ("1", "2")  # write-once
    assert "evaluation.json" in {a.path for a in client.list_artifacts(continued.info.run_id)}
    nll = client.get_metric_history(continued.info.run_id, "test/nll_iw")
    assert [m.value for m in nll] == [pytest.approx(strict_json(tracked[0] / "evaluation.json")["test/nll_iw"])]
    assert nll[0].step == client.get_metric_history(continued.info.run_id, "test/loss")[-1].step


def wandb_records(path):
    """The protobuf records of a W&B run file (W&B's LevelDB-style log: a 7-byte header, then records in 32 KiB
    blocks, each record a 7-byte header and its data, split over blocks as FIRST/MIDDLE/LAST)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert struct.unpack("<4sHB", data[:7])[:2] == (b":W&B", 0xBEE1), f"{path} is not a W&B run file"
    position, pieces = 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a record header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pieces += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # FULL or LAST
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            yield record


def key(item):
    """A W&B record item's key: plain, or nested for names with "/"."""
    return item.key or "/".join(item.nested_key)


def wandb_run(directory):
    """What a W&B offline run directory holds: its run record, config, summary, history rows and files."""
    (path,) = directory.glob("run-*.wandb")
    run, config, summary, history, files = None, {}, {}, [], set()
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
        elif kind == "config":
            config |= {u.key: json.loads(u.value_json) for u in record.config.update}
        elif kind == "summary":
            summary |= {key(u): json.loads(u.value_json) for u in record.summary.update}
        elif kind == "history":
            history.append({key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "files":
            files |= {f.path for f in record.files.files}
    return run, config, summary, history, files


def test_wandb_has_one_offline_run_per_job_with_every_scalar_figure_hparam_and_file_kept_through_resume_and_evaluate(
    tracked,
):
    ids = [strict_json(job / "tracking.json")["wandb"]["offline"]["id"] for job in tracked]
    assert len(set(ids)) == 2  # the first job's run ended with it: the second has its own
    for job, run_id in zip(tracked, ids, strict=True):
        parts = sorted((job / "wandb").glob("offline-run-*"))
        assert {part.name.rsplit("-", 1)[1] for part in parts} == {run_id}  # continued and evaluated: one run
        read = [wandb_run(part) for part in parts]
        run, history = read[0][0], [row for part in read for row in part[3]]
        config = {k: v for part in read for k, v in part[1].items()}
        summary = {k: v for part in read for k, v in part[2].items()}  # the last value of each key
        files = set().union(*(part[4] for part in read))
        assert (run.run_id, run.display_name, run.run_group, run.project) == (
            run_id,
            job.name,
            str(job.parent),
            "betavae",
        )
        metrics = strict_json(job / "metrics.json")
        assert config["beta"] == metrics["weight"]["beta"]
        assert config["likelihood"] == "Bernoulli"
        final = {k: v for k, v in metrics.items() if k.startswith("test/")}  # then evaluate's, where it ran
        final |= {k: v for k, v in evaluations(job).items() if k in final}
        assert {k: summary[k] for k in final} == pytest.approx(final, rel=1e-6)
        for tag, points in tensorboard_scalars(job).items():  # every TensorBoard scalar, at its steps, with its values
            logged = [(row["trainer/global_step"], row[tag]) for row in history if tag in row]
            assert [s for s, _ in logged] == [p.step for p in points], tag
            assert [v for _, v in logged] == pytest.approx([p.value for p in points], rel=1e-6), tag
        images = {(k.removesuffix("/_type"), row["trainer/global_step"]) for row in history for k in row
                  if k.endswith("/_type") and row[k] == "images/separated"}  # fmt: skip
        assert images == {(tag, step) for tag, steps in tensorboard_images(job).items() for step in steps}
        assert {"metrics.json", "latent_evolution.gif"} <= files
        newest = [part for part in parts if (part / "files" / "metrics.json").exists()][-1]
        assert json.loads((newest / "files" / "metrics.json").read_text()) == metrics

    evaluated = wandb_run(sorted((tracked[0] / "wandb").glob("offline-run-*"))[-1])
    assert "evaluation.json" in evaluated[4]
    assert evaluated[2]["test/nll_iw"] == pytest.approx(strict_json(tracked[0] / "evaluation.json")["test/nll_iw"])


@pytest.mark.parametrize("package", ["mlflow", "wandb"])
def test_a_logger_whose_package_is_missing_stops_the_sweep_before_any_work_naming_the_extra(tmp_path, package):
    root = tmp_path / "sweep"
    result = run_module("betavae.train", "-m", "beta=0.1,1.0", *FEW_BATCHES_SMALL_FIGURES, f"hydra.sweep.dir={root}",
                        f"logger=[tensorboard,{package}]", check=False, without=package)  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == (f"error: logger.{package} needs the {package} package: pip install 'betavae[{package}]' "
                    f"(in a checkout: pip install -e '.[{package}]')")  # fmt: skip
    assert not list(root.glob("*/metrics.json"))
    assert not list(root.glob("*/checkpoints"))
