"""Reading a sweep: each job directory's overrides, config, status and results (the registry's metrics, as
`betavae.runs.layout.JobDir.results` merges them), and every job the plan has that never started."""

from __future__ import annotations

import itertools
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from betavae.base.cli import PATH_KEYS
from betavae.base.errors import RunError
from betavae.metrics import registry
from betavae.runs.continuation import run_config
from betavae.runs.layout import JobDir, RunRecord, Status, SweepDir
from betavae.runs.plan import read_plan

Job = dict[str, Any]  # job, overrides, seed, config (for the swept key), status, reason, and a value per metric
WEIGHTS = ("beta", "objective.")  # keys of an objective's own weight (beta: top-level β; objective.c_max, ...)
OWN_WEIGHT = "weight"  # the key a sweep over several objectives is read along: each job's own weight's value


def read_job(job: JobDir) -> Job:
    """One job: its overrides, seed and config, and its metrics or its status (failed, unfinished) and reason."""
    overrides = yaml.safe_load(job.overrides.read_text()) or []
    cfg = run_config(job.root)
    record = RunRecord.read(job.root)
    found = {"job": job.root.name, "overrides": overrides, "seed": int(cfg.seed), "config": cfg}
    if record is None and job.metrics.exists():
        return {**found, "status": Status.FAILED, "reason": f"{job.metrics}: unreadable, not a JSON object"}
    if (record is None or not record.finished) and (holder := job.holder()):
        return {**found, "status": Status.RUNNING, "reason": f"its lock is held ({holder}): training now"}
    if record is None or not record.finished:
        status = Status.FAILED if record and record.status is Status.FAILED else Status.UNFINISHED
        reason = record.reason if record else f"no {JobDir.METRICS}: stopped early"
        return {**found, "status": status, "reason": reason}
    values = {**job.results(), "epochs": record.epochs, "wall_time_s": record.wall_time_s}
    metrics = {m.key: values[m.key] for m in registry.columns() if values.get(m.key) is not None}
    return {**found, "status": Status.OK, "notes": job.notes(), **metrics}


def not_run(overrides: list[str], sweep: DictConfig) -> Job:
    """A planned job that never started, with its seed and config from its overrides over the sweep's config."""
    cfg = sweep
    for override in overrides:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([override.lstrip("+")]))
        except Exception:  # a group's choice (objective=tcvae) replaces no value: the sweep's config stands there
            continue
    values = dict(o.split("=", 1) for o in overrides if "=" in o)
    return {"job": ",".join(overrides), "overrides": overrides, "seed": int(values.get("seed", sweep.seed)),
            "config": cfg, "status": Status.NOT_RUN, "reason": "never started"}  # fmt: skip


def identity(overrides: list[str]) -> tuple[str, ...]:
    """What makes a job the job it is: its overrides but the path keys, which name where files are, not what the
    job does (its directory's name leaves them out too): a job run again with a moved `data.path` is the same."""
    return tuple(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in PATH_KEYS)


def read_jobs(sweep: SweepDir) -> list[Job]:
    """Every job of the sweep: each job directory's, then each planned job that never started."""
    jobs = []
    for job in sweep.jobs():
        try:
            jobs.append(read_job(job))
        except (RunError, OSError, ValueError, yaml.YAMLError) as err:
            jobs.append({"job": job.root.name, "overrides": [], "seed": -1, "config": None,
                         "status": Status.FAILED, "reason": str(err)})  # fmt: skip
    if sweep.plan.is_file():
        planned_cfg, planned = read_plan(sweep.plan)
        started = {identity(j["overrides"]) for j in jobs}
        jobs += [not_run(o, planned_cfg) for o in planned if identity(o) not in started]
    if not jobs:
        raise RunError(f"{sweep.root} holds no sweep: no multirun.yaml and no job directory (with .hydra/config.yaml)")
    return jobs


def value_of(job: Job, key: str) -> float | None:
    """A job's value of a config key (the swept key: beta, objective.c_max), as a number; None where its config
    has none, or not a number. β is the objective's (`objective.beta`): a capacity job's top-level `beta` is
    only the unused default. Along `OWN_WEIGHT`, the value of the job's own weight (`weight_key`)."""
    if key == OWN_WEIGHT:
        own = job.get("weight_key")
        return float(job["setting"][own]) if own else None
    cfg = job.get("config")
    if cfg is None:
        return None
    if key == "beta" and "objective" in cfg:
        key = "objective.beta"
    try:
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    except Exception:  # an interpolation that cannot resolve outside the job (hydra:runtime...)
        return None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def label_groups(jobs: list[Job]) -> None:
    """Set each job's group (its overrides except the seed and those every job shares: the swept values),
    setting (the same as key → value), label (the same with the seed), its own weight's key where it sweeps one
    (`weight_key`) and its series (the group without that weight: the objective it trains)."""
    common = set.intersection(*(set(j["overrides"]) for j in jobs)) if jobs else set()
    for j in jobs:
        varying = [o for o in j["overrides"] if o not in common]
        j["setting"] = dict(o.split("=", 1) for o in varying if not o.startswith("seed=") and "=" in o)
        j["group"] = ",".join(o for o in varying if not o.startswith("seed=")) or "(all jobs)"
        j["label"] = ",".join(varying) or j["job"]  # the job alone, for rows of jobs that did not finish
        j["weight_key"] = weight_key(j["setting"])
        j["series"] = series_of(j["group"], j["weight_key"])


def weight_key(setting: dict[str, str]) -> str | None:
    """The one numeric override of a job's setting that weighs its objective (beta, objective.gamma,
    objective.lambda_od, ...); None where it has none, or several (then no one of them is its own)."""
    keys = [k for k, v in setting.items() if k.lstrip("+").startswith(WEIGHTS) and ordered(v)[0] == 0]
    return keys[0] if len(keys) == 1 else None


def series_of(group: str, weight: str | None) -> str:
    """A group without its own weight ("objective=factorvae" for "objective=factorvae,objective.gamma=10"): what
    it trains; the weight's key where nothing else is left ("beta": the default objective)."""
    if weight is None:
        return group
    rest = [part for part in group.split(",") if part.split("=", 1)[0] != weight]
    return ",".join(rest) or weight.lstrip("+")


def several_objectives(jobs: list[Job]) -> bool:
    """Whether the sweep's jobs weigh different objectives' own weights (β-VAE's beta beside FactorVAE's
    objective.gamma, ...): its groups are then read each along its own weight."""
    return len({j.get("weight_key") for j in jobs} - {None}) > 1


def ordered(value: str) -> tuple[int, float | str]:
    """A sort key for override values: numbers by value, before other values by name."""
    try:
        return 0, float(value)
    except ValueError:
        return 1, value


def comparisons(jobs: list[Job]) -> list[tuple[str, str]]:
    """The comparisons a sweep's design makes: every pair of groups whose settings differ in one override only,
    in the order of its values (numbers ascending): β = 1 → 4, 1 → 10 and 4 → 10 at each objective, and
    β-VAE → β-TCVAE at each β, for `-m objective=beta,tcvae beta=1,4,10`. In a sweep over several objectives,
    first each other objective's groups against β-VAE's (`across_objectives`), each pair once."""
    settings = {j["group"]: j["setting"] for j in jobs if j["status"] is Status.OK}
    pairs = across_objectives(jobs) if several_objectives(jobs) else []
    made = {frozenset(pair) for pair in pairs}
    for key in sorted({k for setting in settings.values() for k in setting}):
        lines: dict[tuple, list[str]] = {}  # the groups that agree on every other key, along this one
        for group, setting in settings.items():
            if key in setting:
                others = tuple(sorted((k, ordered(v)) for k, v in setting.items() if k != key))
                lines.setdefault(others, []).append(group)
        for _, line in sorted(lines.items()):
            for pair in itertools.combinations(sorted(line, key=lambda g: ordered(settings[g][key])), 2):
                if frozenset(pair) not in made:
                    pairs.append(pair)
                    made.add(frozenset(pair))
    return pairs


def trains_beta_vae(job: Job) -> bool:
    """Whether a job's objective is β-VAE's (the class its config names, wherever a version kept it)."""
    target = OmegaConf.select(job["config"], "objective._target_", default="") if job.get("config") else ""
    return str(target).rsplit(".", 1)[-1] == "BetaObjective"


def across_objectives(jobs: list[Job]) -> list[tuple[str, str]]:
    """In a sweep over several objectives, each group of β-VAE (else of the objective first by name) against
    each group of every other objective: what another way of buying disentanglement gives against β's."""
    series: dict[str, list[Job]] = {}
    for j in jobs:
        if j["status"] is Status.OK:
            series.setdefault(j["series"], []).append(j)
    names = sorted(series, key=lambda s: (not all(trains_beta_vae(j) for j in series[s]), s))
    if len(names) < 2:
        return []

    def groups(name: str) -> list[str]:
        members = sorted(series[name], key=lambda j: ordered(j["setting"].get(j["weight_key"] or "", "")))
        return list(dict.fromkeys(j["group"] for j in members))

    return [(a, b) for a in groups(names[0]) for other in names[1:] for b in groups(other)]


def by_seed(jobs: list[Job]) -> dict[str, dict[int, Job]]:
    """The finished jobs of each group, by seed."""
    groups: dict[str, dict[int, Job]] = {}
    for j in jobs:
        if j["status"] is Status.OK:
            groups.setdefault(j["group"], {})[j["seed"]] = j
    return groups
