"""`python -m betavae.summarize sweep_dir=<multirun>`: one table and one trade-off plot for all jobs of a sweep.

Jobs are grouped by their overrides except the seed; each group shows mean ± standard deviation over its
seeds. Every job the sweep planned (multirun.yaml's overrides, expanded as Hydra's basic sweeper does) is
listed: ok, failed (with the reason its metrics.json records), unfinished (started, never finished: killed or
interrupted) or not run. Writes summary.md, summary.csv, summary.json and tradeoff.png at the sweep root.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import statistics
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import scipy.stats
import yaml
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from betavae.cli import quote_path_arguments
from betavae.errors import RunError, first_line
from betavae.files import atomic, read_json, write_json, write_png
from betavae.plotting import new_figure, render
from betavae.runs import RunRecord, Status, job_dirs, run_config

log = logging.getLogger(__name__)
PATH_KEYS = ("sweep_dir",)

COLUMNS = {  # metric key: table header
    "test/recon": "recon (nats)",
    "test/kl": "KL (nats)",
    "test/elbo": "ELBO (nats)",
    "test/mi": "MI (nats)",
    "test/tc": "TC (nats)",
    "test/dimwise_kl": "dim-wise KL (nats)",
    "test/nll_elbo": "−ELBO, IW images (nats)",
    "test/nll_iw": "NLL IW (nats)",
    "test/nll_iw_se": "NLL IW s.e.",
    "test/iw_ess": "IW ESS / K",
    "test/fid": "FID of decoder means",
    "test/fid_std": "FID sd over draws",
    "test/fid_recon": "FID recon",
    "test/active_units": "active units",
    "test/probe_accuracy": "probe on z ~ q (%)",
    "test/probe_accuracy_active": "probe on active μ (%)",
    "test/mig": "MIG",
    "test/dci_disentanglement": "DCI disentanglement",
    "test/dci_completeness": "DCI completeness",
    "test/dci_informativeness": "DCI informativeness",
    "test/sap": "SAP",
    "test/factorvae_score": "FactorVAE score",
    "test/betavae_score": "BetaVAE score",
    "epochs": "epochs",
    "wall_time_s": "wall time (s)",
}
DISENTANGLEMENT = ("test/mig", "test/dci_disentanglement", "test/dci_completeness", "test/dci_informativeness",
                   "test/sap", "test/factorvae_score", "test/betavae_score")  # fmt: skip
PAIRED = (
    "test/recon",
    "test/kl",
    "test/elbo",
    "test/mi",
    "test/tc",
    "test/dimwise_kl",
    "test/nll_iw",
    "test/fid",
    "test/fid_recon",
    "test/probe_accuracy",
    "test/probe_accuracy_active",
    *DISENTANGLEMENT,
)


def read_job(job_dir: Path) -> dict[str, Any]:
    """One job: its overrides, β, seed and metrics, or its status (failed, unfinished) and reason."""
    overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    cfg = run_config(job_dir)
    record = RunRecord.read(job_dir)
    job = {"job": job_dir.name, "overrides": overrides, "beta": float(cfg.beta), "seed": int(cfg.seed)}
    if record is None and (job_dir / RunRecord.FILE).exists():
        return {**job, "status": Status.FAILED, "reason": f"{job_dir / RunRecord.FILE}: unreadable, not a JSON object"}
    if record is None or not record.finished:
        status = Status.FAILED if record and record.status is Status.FAILED else Status.UNFINISHED
        reason = record.reason if record else f"no {RunRecord.FILE}: stopped early"
        return {**job, "status": status, "reason": reason}
    metrics = {**record.metrics, "epochs": record.epochs, "wall_time_s": record.wall_time_s}
    evaluation = read_json(job_dir / "evaluation.json") or {}  # fills in what training did not measure
    metrics |= {k: v for k, v in evaluation.items() if k in COLUMNS and metrics.get(k) is None}
    return {**job, "status": Status.OK, **{k: metrics[k] for k in COLUMNS if metrics.get(k) is not None}}


def planned_jobs(sweep: DictConfig) -> list[list[str]]:
    """The override list of every job the sweep (its multirun.yaml) planned."""
    params = [f"{k}={v}" for k, v in (OmegaConf.select(sweep, "hydra.sweeper.params") or {}).items()]
    overrides = OverridesParser.create().parse_overrides(params + list(sweep.hydra.overrides.task))
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


def read_plan(path: Path) -> tuple[DictConfig, list[list[str]]]:
    """A sweep's multirun.yaml and the jobs it planned; RunError in one line if it is not one."""
    try:
        sweep = OmegaConf.load(path)
        return sweep, planned_jobs(sweep)
    except Exception as err:  # YAML's, OmegaConf's or Hydra's override parser's error, several lines long
        raise RunError(f"{path}: unreadable as a Hydra multirun.yaml ({first_line(err)})") from None


def not_run(overrides: list[str], cfg: DictConfig) -> dict[str, Any]:
    """A planned job that never started, with β and seed from its overrides (else the sweep's values)."""
    values = dict(o.split("=", 1) for o in overrides)
    beta, seed = values.get("beta", cfg.beta), values.get("seed", cfg.seed)
    return {"job": ",".join(overrides), "overrides": overrides, "beta": float(beta), "seed": int(seed),
            "status": Status.NOT_RUN, "reason": "never started"}  # fmt: skip


def label_groups(jobs: list[dict[str, Any]]) -> None:
    """Set each job's group (its overrides except the seed and those every job shares: the swept values) and
    label (the same with the seed)."""
    common = set.intersection(*(set(j["overrides"]) for j in jobs)) if jobs else set()
    for j in jobs:
        varying = [o for o in j["overrides"] if o not in common]
        j["setting"] = dict(o.split("=", 1) for o in varying if not o.startswith("seed=") and "=" in o)
        j["group"] = ",".join(o for o in varying if not o.startswith("seed=")) or "(all jobs)"
        j["label"] = ",".join(varying) or j["job"]  # the job alone, for rows of jobs that did not finish


def group_rows(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per group of finished jobs (mean, std, n), then one row per failed job; sorted by β."""
    label_groups(jobs)
    rows = []
    finished = [j for j in jobs if j["status"] is Status.OK]
    for group in sorted(
        {j["group"] for j in finished}, key=lambda g: (next(j["beta"] for j in finished if j["group"] == g), g)
    ):
        members = [j for j in finished if j["group"] == group]
        row: dict[str, Any] = {"group": group, "beta": members[0]["beta"], "n": len(members), "status": Status.OK}
        row["seeds"] = sorted(j["seed"] for j in members)
        for key in COLUMNS:
            values = [j[key] for j in members if key in j]
            if values:
                row[key] = statistics.fmean(values)
                row[f"{key} std"] = statistics.stdev(values) if len(values) > 1 else None
        rows.append(row)
    rows += [{"group": j["label"], "beta": j["beta"], "n": 1, "status": j["status"], "reason": j["reason"]}
             for j in jobs if j["status"] is not Status.OK]  # fmt: skip
    return rows


def ordered(value: str) -> tuple[int, float | str]:
    """A sort key for override values: numbers by value, before other values by name."""
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def comparisons(jobs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The comparisons a sweep's design makes: every pair of groups whose settings differ in one override only,
    in the order of its values (numbers ascending): β = 1 → 4, 1 → 10 and 4 → 10 at each objective, and
    β-VAE → β-TCVAE at each β, for `-m objective=beta,tcvae beta=1,4,10`."""
    settings = {j["group"]: j["setting"] for j in jobs if j["status"] is Status.OK}
    pairs = []
    for key in sorted({k for setting in settings.values() for k in setting}):
        lines: dict[tuple, list[str]] = {}  # the groups that agree on every other key, along this one
        for group, setting in settings.items():
            if key in setting:
                others = tuple(sorted((k, ordered(v)) for k, v in setting.items() if k != key))
                lines.setdefault(others, []).append(group)
        for _, line in sorted(lines.items()):
            pairs += itertools.combinations(sorted(line, key=lambda g: ordered(settings[g][key])), 2)
    return pairs


def paired_differences(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each comparison (`comparisons`) whose groups share seeds: per metric, the mean, sd and 95% t-interval
    of the per-seed differences (second group − first); a ranking holds only where the interval excludes 0."""
    by_group: dict[str, dict[int, dict[str, Any]]] = {}
    for j in jobs:
        if j["status"] is Status.OK:
            by_group.setdefault(j["group"], {})[j["seed"]] = j
    pairs = []
    for a, b in comparisons(jobs):
        seeds = sorted(set(by_group[a]) & set(by_group[b]))
        if len(seeds) < 2:
            continue
        for key in PAIRED:
            before = [by_group[a][s].get(key) for s in seeds]
            after = [by_group[b][s].get(key) for s in seeds]
            if None in before or None in after:
                continue
            d = [y - x for x, y in zip(before, after, strict=True)]
            mean, sd = statistics.fmean(d), statistics.stdev(d)
            half = float(scipy.stats.t.ppf(0.975, len(d) - 1)) * sd / math.sqrt(len(d))
            interval = [mean - half, mean + half]
            pairs.append({"from": a, "to": b, "metric": key, "n": len(d), "mean": mean, "sd": sd, "ci95": interval,
                          "within_noise": interval[0] <= 0 <= interval[1]})  # fmt: skip
    return pairs


def paired_markdown(pairs: list[dict[str, Any]]) -> str:
    """The paired differences as a Markdown table."""
    lines = ["| from → to | metric | seeds | mean diff. ± sd | 95% interval | |", "|" + " --- |" * 6]
    for p in pairs:
        verdict = "within noise" if p["within_noise"] else "differs"
        (lo, hi), n = p["ci95"], decimals(p["metric"])
        lines.append(f"| {p['from']} → {p['to']} | {COLUMNS[p['metric']]} | {p['n']} | {p['mean']:+.{n}f} ± "
                     f"{p['sd']:.{n}f} | [{lo:+.{n}f}, {hi:+.{n}f}] | {verdict} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def decimals(key: str) -> int:
    """How many decimals a metric is shown with: scores in [0, 1] three, nats two."""
    if key in ("epochs",):
        return 0
    if key in ("wall_time_s", "test/active_units"):
        return 1
    return 3 if "ess" in key or key in DISENTANGLEMENT else 2


def cell(row: dict[str, Any], key: str) -> str:
    """'mean ± std' (or the mean alone, or '–') formatted for the table."""
    if key not in row:
        return "–"
    digits = decimals(key)
    text = f"{row[key]:.{digits}f}"
    std = row.get(f"{key} std")
    return text if std is None else f"{text} ± {std:.{digits}f}"


def fid_error(row: dict[str, Any]) -> float:
    """FID's error bar: the sd over training seeds, or, with one seed, the sd over prior-sample draws."""
    return row.get("test/fid std") or row.get("test/fid_std") or 0.0


def table_cell(text: str) -> str:
    """``text`` as one Markdown table cell: on one line, its pipes escaped (a reason may hold a traceback's
    message of several lines)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(rows: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table; only columns some row has."""
    keys = [k for k in COLUMNS if any(k in r for r in rows)]
    lines = ["| job group | β | seeds | status | " + " | ".join(COLUMNS[k] for k in keys) + " |"]
    lines.append("|" + " --- |" * (4 + len(keys)))
    for r in rows:
        status = r["status"] if r["status"] is Status.OK else f"**{r['status']}**: {table_cell(r['reason'])}"
        lines.append(
            f"| {r['group']} | {r['beta']:g} | {r['n']} | {status} | " + " | ".join(cell(r, k) for k in keys) + " |"
        )
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    """One line per row: group, β, n, status, then mean and std of each metric."""
    fields = ["group", "beta", "n", "status"] + [f"{k}{s}" for k in COLUMNS for s in ("", " std")]
    with atomic(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def iso_elbo_lines(ax: Any, levels: list[float]) -> None:
    """Dashed lines recon + KL = const (iso-ELBO) across the plot; the darker one passes through the best
    (lowest) −ELBO, and lines below it would be better bounds."""
    if not levels:
        return
    ax.autoscale_view()  # the limits the points need, fixed before the lines are drawn across them
    (x0, x1), (y0, y1), best = ax.get_xlim(), ax.get_ylim(), min(levels)
    step = float(np.ceil((max(levels) - best) / 4)) if max(levels) - best > 4 else 2.0
    for level in best + step * np.arange(-2, 8):
        ax.plot([x0, x1], [level - x0, level - x1], ls="--", lw=0.8, color="0.8", zorder=0)
    ax.plot([x0, x1], [best - x0, best - x1], ls="--", lw=1, color="0.3", zorder=0,
            label=f"recon + KL = {best:.1f} (best −ELBO); grey: every {step:g} nats")  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.legend(loc="upper right", fontsize=8)


def series(row: dict[str, Any]) -> str:
    """The line a group is drawn on against β: its label without β ("objective=tcvae"; "" when only β varies)."""
    return ",".join(part for part in row["group"].split(",") if not part.startswith("beta="))


def against_beta(ax: Any, done: list[dict[str, Any]], keys: dict[str, str]) -> bool:
    """Each metric in ``keys`` (key: legend label) against β, mean ± sd over seeds, one line per series (other
    swept keys: solid, dashed, ...); log β for a wide range. Whether anything was drawn."""
    rows = sorted(done, key=lambda r: r["beta"])
    lines = sorted({series(r) for r in rows})
    drawn = False
    for (key, label), color in zip(keys.items(), ("C0", "C1", "C2", "C3", "C4", "C5", "C6"), strict=False):
        for line, style in zip(lines, ("-", "--", ":", "-."), strict=False):
            have = [r for r in rows if key in r and series(r) == line]
            errors = [fid_error(r) if key == "test/fid" else r.get(f"{key} std") or 0.0 for r in have]
            if have:
                ax.errorbar([r["beta"] for r in have], [r[key] for r in have], yerr=errors, fmt="o", ls=style,
                            color=color, capsize=3, label=f"{label} · {line}" if line else label)  # fmt: skip
                drawn = True
    betas = [r["beta"] for r in rows]
    if betas and min(betas) > 0 and max(betas) / min(betas) > 5:
        ax.set_xscale("log")
    ax.set_xlabel("β")
    return drawn


PANELS = {  # title: (metrics and their labels, y label), drawn where a group has the first metric
    "generation quality": ({"test/fid": "FID"}, "test FID of decoder means (prior samples)"),
    "where the KL goes": ({"test/mi": "index-code MI", "test/tc": "total correlation",
                           "test/dimwise_kl": "dimension-wise KL"}, "nats / image (test images, q(z) over them all)"),
    "what β buys: disentanglement": ({"test/mig": "MIG", "test/dci_disentanglement": "DCI disentanglement",
                                      "test/factorvae_score": "FactorVAE", "test/betavae_score": "BetaVAE"},
                                     "score (1: each factor in one latent)"),
}  # fmt: skip


def tradeoff_plot(rows: list[dict[str, Any]]) -> np.ndarray:
    """The rate–distortion plane (KL, recon) with one labelled point per group; then, against β, FID, the KL's
    parts (MI, TC, dimension-wise KL) and the disentanglement scores, each panel where the sweep has them."""
    done = [r for r in rows if r["status"] is Status.OK and "test/kl" in r and "test/recon" in r]
    panels = [title for title, (keys, _) in PANELS.items() if any(next(iter(keys)) in r for r in done)]
    fig = new_figure(16 * (1 + len(panels)) / 3, 4.2)  # 16 inches for three panels
    left, *axes = fig.subplots(1, 1 + len(panels), squeeze=False)[0]
    label_by_beta = len({r["beta"] for r in done}) == len(done)
    for r in done:
        label = f"β = {r['beta']:g}" if label_by_beta else r["group"]
        left.errorbar(r["test/kl"], r["test/recon"], xerr=r.get("test/kl std"), yerr=r.get("test/recon std"),
                      fmt="o", capsize=3)  # fmt: skip
        left.annotate(label, (r["test/kl"], r["test/recon"]), textcoords="offset points", xytext=(6, 6))
    left.margins(0.15)  # room for the labels
    iso_elbo_lines(left, [r["test/kl"] + r["test/recon"] for r in done])
    left.set_xlabel("rate: test KL (nats / image)")
    left.set_ylabel("distortion: test recon (nats / image)")
    left.set_title("rate–distortion")
    for ax, title in zip(axes, panels, strict=True):
        keys, ylabel = PANELS[title]
        if against_beta(ax, done, keys) and len(ax.get_legend_handles_labels()[1]) > 1:
            ax.legend(fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    seeds = max((r["n"] for r in done), default=1)
    fig.suptitle("β sweep" + (f" · mean ± std over {seeds} seeds" if seeds > 1 else ""))
    return render(fig)


def summarize(sweep_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """Read every job of the sweep, write the four summary files at its root; return the Markdown table and
    the jobs."""
    sweep_dir = Path(sweep_dir)
    jobs = []
    for job_dir in job_dirs(sweep_dir):
        try:
            jobs.append(read_job(job_dir))
        except (RunError, OSError, ValueError, yaml.YAMLError) as err:
            jobs.append({"job": job_dir.name, "overrides": [], "beta": math.nan, "seed": -1,
                         "status": Status.FAILED, "reason": str(err)})  # fmt: skip
    if (sweep_dir / "multirun.yaml").is_file():
        sweep, planned = read_plan(sweep_dir / "multirun.yaml")
        started = {tuple(j["overrides"]) for j in jobs}
        jobs += [not_run(o, sweep) for o in planned if tuple(o) not in started]
    if not jobs:
        raise RunError(f"{sweep_dir} holds no sweep: no multirun.yaml and no job directory (with .hydra/config.yaml)")
    rows = group_rows(jobs)
    table = markdown(rows)
    pairs = paired_differences(jobs)
    text = f"# Sweep summary: {sweep_dir}\n\n{table}"
    if pairs:
        text += "\n## Paired differences over shared seeds (second group − first)\n\n" + paired_markdown(pairs)
    with atomic(sweep_dir / "summary.md") as tmp:
        tmp.write_text(text)
    write_csv(rows, sweep_dir / "summary.csv")
    write_json(sweep_dir / "summary.json", {"groups": rows, "jobs": jobs, "paired": pairs})
    write_png(sweep_dir, "tradeoff", tradeoff_plot(rows))
    return table, jobs


@hydra.main(version_base="1.3", config_path="../conf", config_name="summarize")
def main(cfg: DictConfig) -> None:
    """Rebuild the summary files of an existing sweep directory and print the table."""
    if OmegaConf.is_missing(cfg, "sweep_dir") or not cfg.sweep_dir:
        raise SystemExit("error: give sweep_dir=<multirun directory> (python -m betavae.summarize sweep_dir=...)")
    try:
        log.info("%s", summarize(Path(cfg.sweep_dir))[0].rstrip("\n"))
    except RunError as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    quote_path_arguments(PATH_KEYS)
    main()
