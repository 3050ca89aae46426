"""`python -m betavae.export run_dir=<job> out=<folder> | sweep_dir=<multirun> out=<folder>`: trained models in the
Hugging Face Hub's model layout, to hand to someone without the run directory: `model.safetensors` (the network's
weights alone), `config.json` (what rebuilds the network and its likelihood, and what it was trained on and with)
and `README.md` (a model card: data, objective, its weights, seed, the test metrics with their spread over the
sweep's seeds, the command that trained it, the package versions). `betavae.api.load_model(folder)` rebuilds the
network from the folder alone. A sweep exports every finished job into a folder of its own, and an index."""

from __future__ import annotations

import importlib.metadata
import logging
import math
from pathlib import Path
from typing import Any

import hydra
import yaml
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from betavae.api import summary_rows
from betavae.base.cli import quote_path_arguments
from betavae.base.config import require
from betavae.base.errors import ConfigError, RunError, first_line
from betavae.base.files import atomic, read_json, write_json
from betavae.metrics import registry
from betavae.model.run import load_run
from betavae.runs.layout import JobDir, ModelDir, RunRecord, SweepDir, job_dirs
from betavae.runs.sweep import label_groups, read_jobs

log = logging.getLogger(__name__)
INDEX = "index.json"  # a sweep's export: its models
PACKAGES = ("betavae", "torch", "lightning", "hydra-core", "safetensors")
LICENSE = "mit"  # the package's (pyproject.toml), which its exported weights carry


def versions() -> dict[str, str]:
    """The versions of the packages a model was exported with."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def command(job: JobDir) -> str:
    """The command that trained the job, as its .hydra/overrides.yaml (and its continuations) record it."""
    overrides = yaml.safe_load(job.overrides.read_text()) or [] if job.overrides.is_file() else []
    parts = yaml.safe_load(job.continued.read_text()) or [] if job.continued.is_file() else []
    text = " ".join(["python -m betavae.train", *map(str, overrides)])
    return text + "".join(f"\n(continued: python -m betavae.train {' '.join(p['overrides'])})" for p in parts)


def model_config(run: Any, record: RunRecord | None) -> dict[str, Any]:
    """config.json: the network's architecture and likelihood (all load_model needs), and what it was trained
    on and with."""
    data = OmegaConf.to_container(run.config.data, resolve=False)
    source = get_class(str(data.get("_target_")))
    return {
        "format": ModelDir.FORMAT,
        "library": "betavae",
        "architecture": run.model.architecture,
        "image_shape": list(run.model.image_shape),
        "objective": run.module.hparams["objective"],
        "weight": run.module.objective.weight,
        "lr": run.module.lr,
        "data": {"class": source.__name__, "title": source.title, "hub_dataset": source.hub_dataset, "settings": data},
        "seed": record.seed if record else None,
        "epochs": record.epochs if record else None,
        "checkpoint": run.checkpoint.name,
        "metrics": registry.scores(run.metrics),
        "versions": versions(),
    }


Spread = dict[str, Any]  # a metric's mean and sd over its group's seeds, and the seeds


def spread_cell(key: str, spreads: dict[str, Spread]) -> str:
    """A metric's group mean ± sd over the sweep's seeds, as the card's table shows it ('–' where none)."""
    if key not in spreads:
        return "–"
    spread, decimals = spreads[key], registry.metric(key).decimals
    seeds = ", ".join(map(str, spread["seeds"]))
    return f"{spread['mean']:.{decimals}f} ± {spread['std']:.{decimals}f} (seeds {seeds})"


def hub_header(config: dict[str, Any], job: JobDir, spreads: dict[str, Spread]) -> dict[str, Any]:
    """The card's metadata as the Hub reads it: license, library, tags, data set, metrics and a model-index with the
    test metrics (each with its group's spread over seeds, where the sweep has several)."""
    data = config["data"]
    dataset = {"type": data["hub_dataset"] or data["class"], "name": data["title"], "split": "test"}
    scores = {k: v for k, v in config["metrics"].items() if registry.metric(k).column and math.isfinite(v)}
    metrics = [{"type": k, "value": v, "name": registry.metric(k).label,
                **({"args": {"group_" + f: spreads[k][f] for f in ("mean", "std", "seeds")}} if k in spreads else {})}
               for k, v in scores.items()]  # fmt: skip
    header: dict[str, Any] = {"license": LICENSE, "library_name": "betavae",
                              "tags": ["beta-vae", "vae", "disentanglement", data["class"]]}  # fmt: skip
    if data["hub_dataset"]:
        header["datasets"] = [data["hub_dataset"]]
    header["metrics"] = list(scores)
    header["model-index"] = [{"name": job.root.name, "results": [{
        "task": {"type": "unconditional-image-generation", "name": "Representation learning (VAE)"},
        "dataset": dataset, "metrics": metrics}]}]  # fmt: skip
    return header


def card(config: dict[str, Any], job: JobDir, spreads: dict[str, Spread]) -> str:
    """README.md: the model card, with the Hub's YAML header (`hub_header`)."""
    weight = ", ".join(f"{k} = {v:g}" for k, v in config["weight"].items())
    rows = [f"| `{k}` | {registry.metric(k).label} | {v:.{registry.metric(k).decimals}f} | {spread_cell(k, spreads)} |"
            for k, v in config["metrics"].items() if registry.metric(k).column]  # fmt: skip
    architecture = ", ".join(f"{k}={v}" for k, v in config["architecture"].items())
    notes = job.notes()
    lines = [
        "---", yaml.safe_dump(hub_header(config, job, spreads), sort_keys=False, allow_unicode=True).strip(), "---", "",
        f"# {job.root.name}", "",
        f"A β-VAE trained with the betavae package on {config['data']['title']} "
        f"({' × '.join(map(str, config['image_shape']))} images).", "",
        f"- **Objective**: {config['objective']['name']} ({weight}), Adam at lr {config['lr']:g}, "
        f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}, seed {config['seed']}; the checkpoint of "
        f"the best validation loss ({config['checkpoint']}).",
        f"- **Network**: {architecture}.",
        "- **Load it** (no run directory needed): `from betavae.api import load_model; model = load_model(folder)`;",
        "  `model.encode(x).mu` are the codes of images x, flattened floats in [0, 1].", "",
        "## Test metrics", "",
        "| key | metric | this model | its group over the sweep's seeds |", "| --- | --- | --- | --- |", *rows, "",
        *(["## Notes", "", *(f"- {note}" for note in notes), ""] if notes else []),
        "## How it was trained", "", "```bash", command(job), "```", "",
        "Packages: " + ", ".join(f"{k} {v}" for k, v in config["versions"].items()) + ".", "",
    ]  # fmt: skip
    return "\n".join(lines)


def is_model_export(folder: ModelDir) -> bool:
    """Whether a folder holds what `export_run` writes (its config.json, of this format)."""
    config = read_json(folder.config)
    return isinstance(config, dict) and config.get("format") == ModelDir.FORMAT and "architecture" in config


def is_sweep_export(out: Path) -> bool:
    """Whether a folder holds what `export_sweep` writes (its index.json)."""
    index = read_json(out / INDEX)
    return isinstance(index, dict) and {"sweep", "models"} <= index.keys()


def check_out(out: Path, exported: bool, overwrite: bool) -> None:
    """Refuse, before any work, an ``out`` whose contents an export would lose: a file, a folder holding what no
    export wrote (``exported``: it holds an export's files), or an earlier export unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise RunError(f"out={out}: not a folder; give a folder to write the model into")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not exported:
        held = ", ".join(sorted(path.name for path in out.iterdir())[:3])
        raise RunError(f"out={out}: holds files no export wrote ({held}, ...); give a new or empty folder")
    if not overwrite:
        raise RunError(f"out={out}: holds an export already; give overwrite=true to replace it")


def export_run(run_dir: Path, out: Path, spreads: dict[str, Spread] | None = None, overwrite: bool = False) -> Path:
    """Write one trained job's folder: weights, config and card; return the folder. A folder that holds anything
    else is refused (`check_out`)."""
    from safetensors.torch import save_file

    check_out(Path(out), is_model_export(ModelDir(Path(out))), overwrite)
    record = RunRecord.read(Path(run_dir))
    if record is None or not record.finished:
        state = "no metrics.json" if record is None else f"it is {record.status}"
        raise RunError(f"{run_dir}: not a finished run ({state}); export a run that trained and tested to the end")
    job, run, folder = JobDir(Path(run_dir)), load_run(run_dir), ModelDir(Path(out))
    config = model_config(run, run.record)
    folder.root.mkdir(parents=True, exist_ok=True)
    write_json(folder.config, config)
    with atomic(folder.weights) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in run.model.state_dict().items()}, str(tmp),
                  metadata={"format": "pt", "library": "betavae"})  # fmt: skip
        tmp.chmod(folder.config.stat().st_mode & 0o777)  # safetensors writes 0600: readable as the other files
    with atomic(folder.card) as tmp:
        tmp.write_text(card(config, job, spreads or {}))
    log.info("%s: exported to %s", run_dir, out)
    return out


def group_spreads(sweep_dir: Path) -> dict[str, dict[str, Spread]]:
    """For each finished job of a sweep, its group's mean and sd over seeds per metric, as the summary gives it."""
    rows = {row["group"]: row for row in summary_rows(sweep_dir)}
    jobs = read_jobs(SweepDir(Path(sweep_dir)))
    label_groups(jobs)
    spreads = {}
    for j in jobs:
        row = rows.get(j["group"])
        if row is None or row.get("n", 1) < 2:
            continue
        spreads[j["job"]] = {m.key: {"mean": row[m.key], "std": row[f"{m.key} std"], "seeds": row["seeds"]}
                             for m in registry.columns() if row.get(m.key) is not None
                             and row.get(f"{m.key} std") is not None}  # fmt: skip
    return spreads


def export_sweep(sweep_dir: Path, out: Path, overwrite: bool = False) -> list[Path]:
    """Every finished job of a sweep into ``out/<job>/``, and ``out/index.json`` listing them. A folder that holds
    anything else is refused (`check_out`)."""
    check_out(Path(out), is_sweep_export(Path(out)), overwrite)
    spreads, exported, index = group_spreads(sweep_dir), [], []
    for job_dir in job_dirs(Path(sweep_dir)):
        record = RunRecord.read(job_dir)
        if record is None or not record.finished:
            continue
        folder = export_run(job_dir, out / job_dir.name, spreads.get(job_dir.name), overwrite)
        exported.append(folder)
        index.append({"folder": job_dir.name, **{k: v for k, v in (read_json(ModelDir(folder).config) or {}).items()
                                                 if k in ("weight", "seed", "metrics")}})  # fmt: skip
    write_json(out / INDEX, {"sweep": str(sweep_dir), "models": index})
    return exported


def export(cfg: DictConfig) -> list[Path]:
    """Export one run or every finished run of a sweep, as `python -m betavae.export` does; return the folders
    written."""
    if bool(cfg.run_dir) == bool(cfg.sweep_dir) or not cfg.out:
        raise ConfigError("give exactly one of run_dir=<job directory> or sweep_dir=<multirun directory>, and "
                          "out=<folder> (python -m betavae.export run_dir=... out=...)")  # fmt: skip
    out, overwrite = Path(cfg.out).expanduser(), cfg.overwrite
    require(isinstance(overwrite, bool), "overwrite", overwrite, "must be true or false")
    if cfg.run_dir:
        return [export_run(Path(cfg.run_dir), out, overwrite=overwrite)]
    exported = export_sweep(Path(cfg.sweep_dir), out, overwrite)
    log.info("Exported %d models to %s", len(exported), cfg.out)
    return exported


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    """Export one run or every finished run of a sweep."""
    try:
        export(cfg)
    except (RunError, ConfigError) as err:
        raise SystemExit(f"error: {first_line(err)}") from None


if __name__ == "__main__":
    quote_path_arguments()
    main()
