"""Sweep summaries: groups over seeds and their paired differences, the key a sweep swept (a capacity sweep reads
along objective.c_max), every reader giving evaluate's later value, old run directories, and the faults, on real
Hydra multiruns of real Fashion-MNIST."""

import csv
import json
import os
import shutil
import socket
import statistics

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from betavae.base.errors import RunError
from betavae.model.run import load_run
from betavae.runs.layout import Status
from betavae.runs.sweep import comparisons, label_groups, value_of
from betavae.summary import summarize
from betavae.summary.groups import group_rows, in_table_order, swept_key
from betavae.summary.plot import iso_elbo_lines, tradeoff_figure
from tests.helpers import LATENT_STATS_ONLY, compose_train, limits, run_module, started_run, strict_json

ONE_SHORT_EPOCH = ["trainer.max_epochs=1", *limits(train=20, val=1, test=1), *LATENT_STATS_ONLY]


@pytest.fixture(scope="module")
def seeds_sweep(tmp_path_factory, real_data_dir):
    """A 2-β × 2-seed multirun, one epoch of 20 batches, the latent statistics at its test pass."""
    root = tmp_path_factory.mktemp("seeds")
    run_module("betavae.train", "-m", "beta=0.5,2.0", "seed=1,2", *ONE_SHORT_EPOCH, f"hydra.sweep.dir={root}")
    return root


@pytest.fixture(scope="module")
def capacity_sweep(tmp_path_factory, real_data_dir):
    """`-m objective=capacity objective.c_max=25,5,15`: three capacities, one seed, one epoch of 5 batches."""
    root = tmp_path_factory.mktemp("capacity")
    run_module("betavae.train", "-m", "objective=capacity", "objective.c_max=25,5,15", "trainer.max_epochs=1",
               *limits(train=5, val=1, test=1), *LATENT_STATS_ONLY, f"hydra.sweep.dir={root}")  # fmt: skip
    return root


def axes_titled(figure, title):
    """The figure's panel with this title."""
    return next(ax for ax in figure.axes if ax.get_title() == title)


@pytest.mark.slow
def test_seeds_are_grouped_as_mean_and_std(seeds_sweep):
    summary = json.loads((seeds_sweep / "summary.json").read_text())
    assert summary["along"] == "beta"
    assert [(g["beta"], g["n"], g["seeds"]) for g in summary["groups"]] == [(0.5, 2, [1, 2]), (2.0, 2, [1, 2])]
    for group in summary["groups"]:
        values = [j["test/kl"] for j in summary["jobs"] if j["beta"] == group["beta"]]
        assert group["test/kl"] == pytest.approx(statistics.fmean(values))
        assert group["test/kl std"] == pytest.approx(statistics.stdev(values))
        assert group["test/kl std"] > 0
    table = (seeds_sweep / "summary.md").read_text()
    assert table.count(" ± ") >= 2 * 4
    assert "| beta=0.5 | 0.5 | 2 | ok |" in table


@pytest.mark.slow
def test_paired_differences_are_per_seed_differences_with_a_t_interval(seeds_sweep):
    summary = json.loads((seeds_sweep / "summary.json").read_text())
    jobs = {(j["beta"], j["seed"]): j for j in summary["jobs"]}
    diffs = [jobs[(2.0, s)]["test/kl"] - jobs[(0.5, s)]["test/kl"] for s in (1, 2)]
    pair = next(p for p in summary["paired"] if p["metric"] == "test/kl")
    assert (pair["from"], pair["to"], pair["n"]) == ("beta=0.5", "beta=2.0", 2)
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = 12.7062 * sd / 2**0.5  # Student t, 1 degree of freedom, 97.5%
    assert pair["mean"] == pytest.approx(mean)
    assert pair["sd"] == pytest.approx(sd)
    assert pair["ci95"] == pytest.approx([mean - half, mean + half])
    assert pair["within_noise"] == (mean - half <= 0 <= mean + half)
    assert "## Paired differences over shared seeds" in (seeds_sweep / "summary.md").read_text()


@pytest.mark.slow
def test_a_fashion_sweeps_selection_holds_every_seeds_codes_of_the_same_images_and_compares_seeds_of_a_group_only(
    seeds_sweep,
):
    from betavae.metrics.selection import read_selection

    saved = read_selection(seeds_sweep)
    assert saved["codes"].shape == (4, 10_000, 20)  # every Fashion-MNIST test image, by default
    assert (saved["image_indices"] == np.arange(10_000)).all()
    groups = saved["groups"].tolist()
    same = np.equal.outer(groups, groups) & ~np.eye(4, dtype=bool)
    assert np.isfinite(saved["pairwise_lasso"][same]).all()
    assert np.isnan(saved["pairwise_lasso"][~same]).all()  # never across groups, nor a job with itself
    keep = json.loads((seeds_sweep / "summary.json").read_text())["udr"]["keep"]
    assert sorted(keep) == ["beta=0.5", "beta=2.0"]


@pytest.mark.slow
def test_a_job_without_metrics_is_listed_as_unfinished(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    broken = next(copy.glob("beta=2.0,*seed=2*"))
    (broken / "metrics.json").unlink()
    result = run_module("betavae.summarize", f"sweep_dir={copy}")
    assert "| beta=2.0,seed=2 | 2 | 1 | **unfinished**: no metrics.json: stopped early |" in result.stdout
    assert "| beta=0.5 | 0.5 | 2 | ok |" in result.stdout
    assert "| beta=2.0 | 2 | 1 | ok |" in result.stdout
    assert result.stdout.endswith((copy / "summary.md").read_text())  # printed whole: table, notes, UDR section


@pytest.mark.slow
def test_after_evaluate_the_api_and_every_summary_file_give_evaluates_value_of_a_key_both_wrote(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    trained = {job.name: strict_json(job / "metrics.json")["test/mi"] for job in copy.glob("beta=*")}
    run_module("betavae.evaluate", f"sweep_dir={copy}", "eval.limit=50", "eval.iw_samples=5", "eval.probe=false",
               "eval.figures=false", "fid=none")  # fmt: skip  # test/mi again, on 50 images: another value
    summary = json.loads((copy / "summary.json").read_text())
    for job in copy.glob("beta=*"):
        evaluated = strict_json(job / "evaluation.json")["test/mi"]
        assert evaluated != trained[job.name]
        assert load_run(job).metrics["test/mi"] == evaluated
        assert next(j for j in summary["jobs"] if j["job"] == job.name)["test/mi"] == evaluated
    group = next(g for g in summary["groups"] if g["beta"] == 0.5)
    evaluated = [strict_json(job / "evaluation.json")["test/mi"] for job in copy.glob("beta=0.5,*")]
    assert group["test/mi"] == pytest.approx(statistics.fmean(evaluated))
    with (copy / "summary.csv").open() as f:
        assert float(next(r for r in csv.DictReader(f) if r["group"] == "beta=0.5")["test/mi"]) == group["test/mi"]
    cell = f"{group['test/mi']:.2f} ± {group['test/mi std']:.2f}"
    assert "| beta=0.5 | 0.5 | 2 | ok | " in (copy / "summary.md").read_text()
    assert cell in next(line for line in (copy / "summary.md").read_text().splitlines() if "| beta=0.5 |" in line)


@pytest.mark.slow
def test_an_evaluation_of_an_older_checkpoint_is_left_out_saying_so(seeds_sweep, tmp_path, caplog):
    job = tmp_path / "job"
    shutil.copytree(next(seeds_sweep.glob("beta=0.5,*seed=1*")), job)
    (job / "evaluation.json").write_text(json.dumps({"checkpoint": str(job / "checkpoints/best-epoch=000-old.ckpt"),
                                                     "test/mi": 1.0}))  # fmt: skip
    assert load_run(job).metrics["test/mi"] == strict_json(job / "metrics.json")["test/mi"]
    assert "it scored best-epoch=000-old.ckpt, and the run's best checkpoint is now" in caplog.text


@pytest.mark.slow
def test_a_sweep_of_0_7_0_summarises_and_loads_as_it_did(seeds_sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, copy)
    for job in copy.glob("beta=*"):  # as 0.7.0 wrote them: no weight, no channels, in records, configs, checkpoints
        record = strict_json(job / "metrics.json")
        del record["weight"]
        (job / "metrics.json").write_text(json.dumps(record))
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        del config.model.net["image_channels"], config.data["channels"]
        OmegaConf.save(config, job / ".hydra" / "config.yaml")
        for path in (job / "checkpoints").glob("*.ckpt"):
            checkpoint = torch.load(path, weights_only=True)
            del checkpoint["hyper_parameters"]["net"]["image_channels"]
            torch.save(checkpoint, path)
    before = json.loads((seeds_sweep / "summary.json").read_text())["groups"]
    summarize(copy)
    assert json.loads((copy / "summary.json").read_text())["groups"] == before
    assert tuple(load_run(next(copy.glob("beta=2.0,*"))).model.image_shape) == (1, 28, 28)


@pytest.mark.slow
def test_a_capacity_sweep_records_its_weights_and_its_summary_reads_along_c_max(capacity_sweep):
    records = [strict_json(job / "metrics.json") for job in sorted(capacity_sweep.glob("*objective.c_max=*"))]
    assert sorted(r["weight"]["c_max"] for r in records) == [5.0, 15.0, 25.0]
    assert {r["weight"]["gamma"] for r in records} == {100.0}
    assert not any("beta" in r or "beta" in r["weight"] for r in records)  # the capacity objective has no β
    summary = json.loads((capacity_sweep / "summary.json").read_text())
    assert summary["along"] == "objective.c_max"
    assert [g["objective.c_max"] for g in summary["groups"]] == [5.0, 15.0, 25.0]
    table = (capacity_sweep / "summary.md").read_text().splitlines()
    assert table[2].startswith("| job group | objective.c_max | seeds | status |")
    assert [line.split(" | ")[1] for line in table[4:7]] == ["5", "15", "25"]


@pytest.mark.slow
def test_a_capacity_sweeps_plot_puts_each_capacity_at_its_own_x(capacity_sweep):
    summary = json.loads((capacity_sweep / "summary.json").read_text())
    rows = [{**g, "status": Status(g["status"])} for g in summary["groups"]]
    figure = tradeoff_figure(rows, summary["along"])
    panel = axes_titled(figure, "where the KL goes")
    assert panel.get_xlabel() == "objective.c_max"
    assert {tuple(line.get_xdata()) for line in panel.get_lines()} == {(5.0, 15.0, 25.0)}  # points and caps
    labels = [text.get_text() for text in axes_titled(figure, "rate–distortion").texts]
    assert labels == ["objective.c_max = 5", "objective.c_max = 15", "objective.c_max = 25"]
    assert (capacity_sweep / "tradeoff.png").is_file()


def job(overrides, status=Status.OK):
    """A job as the summary reads it, with the given overrides."""
    return {"overrides": overrides, "job": ",".join(overrides), "status": status}


@pytest.mark.parametrize(
    ("sweep", "key"),
    [
        ([["beta=1", "seed=1"], ["beta=4", "seed=1"]], "beta"),
        ([["objective.c_max=5"], ["objective.c_max=15"]], "objective.c_max"),
        ([["beta=1", "lr=0.01"], ["beta=4", "lr=0.001"], ["beta=1", "lr=0.001"]], "beta"),  # the objective's weight
        (
            [
                ["lr=0.01", "model.net.latent_dim=1"],
                ["lr=0.01", "model.net.latent_dim=2"],
                ["lr=0.001", "model.net.latent_dim=12"],
            ],
            "model.net.latent_dim",  # the most values
        ),
        ([["objective=beta"], ["objective=tcvae"]], "beta"),  # no number differs: β
        ([["seed=1"], ["seed=2"]], "beta"),
    ],
)
def test_the_swept_key_is_the_numeric_override_that_differs_between_groups(sweep, key):
    jobs = [job(overrides) for overrides in sweep]
    label_groups(jobs)
    assert swept_key(jobs) == key


def test_a_metric_some_seeds_of_a_group_lack_says_how_many_jobs_its_cell_comes_from():
    from betavae.summary.groups import group_rows
    from betavae.summary.tables import markdown

    jobs = [job(["beta=1", f"seed={s}"]) | {"seed": s, "config": None, "test/kl": 10.0 + s} for s in (1, 2, 3)]
    jobs[0]["test/mig"] = 0.25  # one seed scored, the others not
    label_groups(jobs)
    (row,) = group_rows(jobs, "beta")
    assert (row["test/mig n"], row["test/mig std"]) == (1, None)
    assert "test/kl n" not in row
    table = markdown([row], "beta")
    assert "| 0.250 (1 of 3 jobs) |" in table
    assert "| 12.00 ± 1.00 |" in table


def test_a_sweeps_paired_comparisons_are_every_pair_along_one_swept_key():
    jobs = [job([f"beta={b}", f"objective={o}", f"seed={s}"]) for b in (1, 10, 4) for o in ("beta", "tcvae")
            for s in (1, 2)]  # fmt: skip
    label_groups(jobs)
    assert comparisons(jobs) == [
        ("beta=1,objective=beta", "beta=4,objective=beta"), ("beta=1,objective=beta", "beta=10,objective=beta"),
        ("beta=4,objective=beta", "beta=10,objective=beta"),
        ("beta=1,objective=tcvae", "beta=4,objective=tcvae"), ("beta=1,objective=tcvae", "beta=10,objective=tcvae"),
        ("beta=4,objective=tcvae", "beta=10,objective=tcvae"),
        ("beta=1,objective=beta", "beta=1,objective=tcvae"), ("beta=4,objective=beta", "beta=4,objective=tcvae"),
        ("beta=10,objective=beta", "beta=10,objective=tcvae")]  # fmt: skip


def test_summarize_faults_are_one_line_naming_the_file(tmp_path):
    sweep = started_run(tmp_path / "sweep" / "job").parent
    (sweep / "job" / "metrics.json").write_text("{not json")
    (sweep / "multirun.yaml").write_text("hydra: [unclosed\n")
    with pytest.raises(RunError, match=rf"^{sweep}/multirun.yaml: unreadable as a Hydra multirun.yaml \(.*\)$"):
        summarize(sweep)
    (sweep / "multirun.yaml").unlink()
    assert f"**failed**: {sweep}/job/metrics.json: unreadable, not a JSON object" in summarize(sweep)[0]
    (empty := tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match=rf"^{empty} holds no sweep: no multirun.yaml and no job directory"):
        summarize(empty)


def test_a_job_still_training_is_listed_as_running_not_as_stopped_early(tmp_path):
    from betavae.runs.process import job_lock

    sweep = started_run(tmp_path / "sweep" / "beta=1", "beta=1").parent
    with job_lock(sweep / "beta=1"):  # as the training process holds it
        table = summarize(sweep)[0]
    assert f"| beta=1 | 1 | 1 | **running**: its lock is held (pid {os.getpid()} on {socket.gethostname()})" in table
    assert "**unfinished**: no metrics.json: stopped early" in summarize(sweep)[0]  # released: the job stopped


def test_a_planned_job_that_never_started_is_listed_at_its_value_of_the_swept_key(tmp_path):
    sweep = started_run(tmp_path / "sweep" / "beta=1", "beta=1").parent
    plan = OmegaConf.merge(OmegaConf.load(sweep / "beta=1" / ".hydra" / "config.yaml"),
                           {"hydra": {"overrides": {"task": ["beta=1,4"]}, "sweeper": {"params": None}}})  # fmt: skip
    OmegaConf.save(plan, sweep / "multirun.yaml")
    (sweep / "beta=1" / "metrics.json").write_text(json.dumps({"status": "failed", "reason": "boom"}))
    table = summarize(sweep)[0]
    assert "| beta=4 | 4 | 1 | **not run**: never started |" in table
    assert "| beta=1 | 1 | 1 | **failed**: boom |" in table


def test_a_job_run_again_with_a_moved_data_file_is_the_planned_job_not_a_second_one(tmp_path):
    sweep = started_run(tmp_path / "sweep" / "beta=1", "beta=1", "data.root=/old/copy").parent
    plan = OmegaConf.merge(OmegaConf.load(sweep / "beta=1" / ".hydra" / "config.yaml"),
                           {"hydra": {"overrides": {"task": ["beta=1", "data.root=/new/copy"]},
                                      "sweeper": {"params": None}}})  # fmt: skip
    OmegaConf.save(plan, sweep / "multirun.yaml")
    (sweep / "beta=1" / "metrics.json").write_text(json.dumps({"status": "failed", "reason": "boom"}))
    table = summarize(sweep)[0]
    assert "not run" not in table
    assert "| beta=1 | 1 | 1 | **failed**: boom |" in table


def test_a_capacity_job_has_no_beta_in_the_summary():
    from betavae.summary.tables import markdown

    jobs = [job(["objective=capacity", f"seed={s}"]) | {"seed": s, "config": compose_train("objective=capacity"),
                                                         "test/kl": 10.0 + s} for s in (1, 2)]  # fmt: skip
    label_groups(jobs)
    assert swept_key(jobs) == "beta"  # no number differs
    (row,) = group_rows(jobs, "beta")
    assert row["beta"] is None  # the top-level beta: 1.0 is the unused default, not this objective's
    assert markdown([row], "beta").splitlines()[0] == "| job group | seeds | status | KL (nats) |"
    mixed = [job(["objective=beta"]) | {"config": compose_train("objective=beta", "beta=4")},
             job(["objective=tcvae"]) | {"config": compose_train("objective=tcvae", "beta=2")},
             job(["objective=capacity"]) | {"config": compose_train("objective=capacity")}]  # fmt: skip
    assert [value_of(j, "beta") for j in mixed] == [4.0, 2.0, None]


@pytest.mark.slow
def test_summarize_without_a_sweep_dir_is_one_line(tmp_path):
    result = run_module("betavae.summarize", cwd=tmp_path, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: give sweep_dir=<multirun directory> (python -m betavae.summarize sweep_dir=...)"
    )


def test_iso_elbo_lines_keep_the_points_in_view_and_mark_the_best_bound():
    from betavae.base.plotting import new_figure

    ax = new_figure(4, 3).add_subplot()
    points = [(38.7, 214.7), (17.0, 222.4), (12.2, 227.5)]  # (KL, recon)
    ax.errorbar(*zip(*points, strict=True), fmt="o")
    ax.margins(0.15)
    iso_elbo_lines(ax, [kl + recon for kl, recon in points])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert all(x0 < kl < x1 and y0 < recon < y1 for kl, recon in points)
    best = ax.get_legend().get_texts()[0].get_text()
    assert best.startswith("recon + KL = 239.4 (best −ELBO)")


def test_jobs_in_table_order_go_along_the_swept_key_by_value_as_the_rows_do():
    jobs = [{"group": f"beta={b}", "seed": s, "status": Status.OK, "config": OmegaConf.create({"beta": b})}
            for b in ("1", "10", "4") for s in (2, 1)]  # fmt: skip  # the job directories' (alphabetical) order
    for j in jobs:
        j["config"].beta = float(j["config"].beta)
    ordered = in_table_order(jobs, "beta")
    assert [(j["group"], j["seed"]) for j in ordered] == [
        ("beta=1", 1), ("beta=1", 2), ("beta=4", 1), ("beta=4", 2), ("beta=10", 1), ("beta=10", 2)]  # fmt: skip
    assert [row["group"] for row in group_rows(jobs, "beta")] == ["beta=1", "beta=4", "beta=10"]
