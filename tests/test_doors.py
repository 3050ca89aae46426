"""The doors in process, as a notebook runs them: `train(cfg)` runs a job as the command does and returns its
record, or records why it stopped and raises the command's one line; `evaluate(cfg)` and `summarize(cfg)` return
what they wrote. A config error answers before torch or Lightning is imported."""

import json
import shutil
import subprocess
import sys

import pytest

from betavae.base.config import composed
from betavae.base.errors import ConfigError, JobStopped
from betavae.evaluate import evaluate
from betavae.export import export
from betavae.runs.continuation import MOVED
from betavae.runs.layout import RunRecord, Status
from betavae.summarize import summarize
from betavae.train import job_config, train
from tests.helpers import EVALUATE_FEW, REPO, WITHOUT_FIGURES, limits

ONE_SHORT_EPOCH = ["trainer.max_epochs=1", *limits(train=3, val=1, test=1), *WITHOUT_FIGURES]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Two jobs trained in process into one sweep directory, as a notebook would: β = 0.5 and 2."""
    root = tmp_path_factory.mktemp("doors") / "sweep"
    records = {beta: train(job_config([f"beta={beta}", *ONE_SHORT_EPOCH], root / f"beta={beta}")) for beta in (0.5, 2)}
    return root, records


@pytest.mark.slow
def test_train_in_process_returns_the_record_it_wrote_and_a_finished_job_is_not_run_again(sweep):
    root, records = sweep
    for beta, record in records.items():
        assert record.status is Status.OK and record.epochs == 1 and record.beta == beta
        assert json.loads((root / f"beta={beta}" / "metrics.json").read_text()) == record.to_json()
    again = train(job_config(["beta=0.5", *ONE_SHORT_EPOCH], root / "beta=0.5"))
    assert again.to_json() == records[0.5].to_json()


def test_train_in_process_records_a_config_error_and_raises_the_commands_line(tmp_path):
    with pytest.raises(JobStopped) as stopped:
        train(job_config(["beta=abc"], tmp_path / "run"))
    assert stopped.value.line == "Invalid config: beta='abc': must be a finite number >= 0"
    record = RunRecord.read(tmp_path / "run")
    assert (record.status, record.reason) == (Status.FAILED, stopped.value.line)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_evaluate_and_summarize_in_process_return_what_they_wrote(sweep):
    root, _ = sweep
    results = evaluate(composed("evaluate", [f"sweep_dir={root}", *EVALUATE_FEW, "udr=none"]))
    assert sorted(path.name for path in results) == ["beta=0.5", "beta=2"]
    for path, result in results.items():
        assert json.loads((path / "evaluation.json").read_text()) == result
    text, jobs = summarize(composed("summarize", [f"sweep_dir={root}", "udr=none"]))
    assert text == (root / "summary.md").read_text()
    assert sorted(job["job"] for job in jobs) == ["beta=0.5", "beta=2"]


@pytest.mark.slow
def test_a_sweep_whose_configs_name_classes_where_0_11_had_them_evaluates_summarises_and_exports(sweep, tmp_path):
    old = tmp_path / "sweep"
    shutil.copytree(sweep[0], old)
    for config in old.glob("*/.hydra/config.yaml"):
        text = config.read_text()
        for was, now in MOVED.items():  # how 0.11 and earlier recorded the classes
            text = text.replace(f"_target_: {now}.", f"_target_: {was}.")
        assert "_target_: betavae.model.MLPVAE" in text
        config.write_text(text)
    assert len(evaluate(composed("evaluate", [f"sweep_dir={old}", *EVALUATE_FEW, "udr=none"]))) == 2
    text, _ = summarize(composed("summarize", [f"sweep_dir={old}", "udr=none"]))
    assert "| beta=0.5 |" in text and "| beta=2 |" in text
    exported = export(composed("export", [f"sweep_dir={old}", f"out={tmp_path}/models"]))
    assert sorted(path.name for path in exported) == ["beta=0.5", "beta=2"]
    assert json.loads((exported[0] / "config.json").read_text())["data"]["class"] == "FashionMNISTDataModule"


@pytest.mark.slow
def test_evaluate_in_process_takes_only_the_overrides_it_is_given(sweep, tmp_path, caplog):
    job_config(["figures.prior_samples.seed=3"], tmp_path / "other")  # a notebook's earlier job: Hydra's job now
    with caplog.at_level("INFO", logger="betavae.evaluate"):
        evaluate(composed("evaluate", [f"run_dir={sweep[0] / 'beta=0.5'}", *EVALUATE_FEW]))
    assert "figures settings: the run's" in caplog.text
    assert "prior_samples.seed" not in caplog.text


def test_the_sweep_summarys_settings_are_refused_before_a_job_trains(tmp_path):
    with pytest.raises(JobStopped, match=r"^Invalid config: udr.num_images=1: must be an integer >= 2$"):
        train(job_config(["udr.num_images=1"], tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_doors_in_process_raise_betavaes_errors_in_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"^give sweep_dir="):
        summarize(composed("summarize"))
    with pytest.raises(ConfigError, match=r"^give exactly one of run_dir="):
        export(composed("export", [f"run_dir={tmp_path}"]))
    with pytest.raises(ConfigError, match=r"^eval\.limit=0: must be null or >= 1$"):
        evaluate(composed("evaluate", [f"run_dir={tmp_path}", "eval.limit=0"]))


@pytest.mark.slow  # a fresh interpreter
def test_a_config_error_answers_before_torch_or_lightning_is_imported(tmp_path):
    code = ("import runpy, sys\n"
            f"sys.argv = ['betavae.train', 'beta=abc', 'hydra.run.dir={tmp_path}/run']\n"
            "try:\n    runpy.run_module('betavae.train', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as stop:\n    print(stop.code)\n"
            "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-2:] == ["Invalid config: beta='abc': must be a finite number >= 0", "[]"]
    assert RunRecord.read(tmp_path / "run").status is Status.FAILED
