"""Unsupervised model selection across a sweep's seeds, the `udr` across-runs family: for each group of jobs that
differ only in seed, every job's posterior means and per-latent KL on the same images, UDR with both correlation
matrices (`betavae.metrics.udr`), the label-free scores of each job's codes, and the seed UDR would keep. It needs no
labels, so it works alike on every data set. Inputs and results go to selection.npz at the sweep root."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from betavae.base.config import is_int, is_number, require
from betavae.base.errors import DataError, RunError, first_line
from betavae.metrics import registry, udr
from betavae.metrics.across import SweepScorer, SweepScores
from betavae.metrics.latents import kl_per_dim
from betavae.model.networks import encode_all
from betavae.model.run import data_of, load_run
from betavae.runs.layout import JobDir, Status, SweepDir
from betavae.runs.sweep import Job

log = logging.getLogger(__name__)
ARRAYS = "selection"  # selection.npz
SCORES = registry.FAMILIES["udr"].keys()  # per job: UDR with both matrices, the label-free scores


class ModelSelection(SweepScorer):
    """UDR (Lasso and Spearman) and the label-free scores of every finished job, on ``num_images`` images of the
    data's ``split`` drawn with ``seed`` (all of them when the split has no more), posterior means encoded in
    batches of ``batch_size`` on ``device``; latents whose mean KL there is at most ``kl_threshold`` are left out
    of UDR, whose Lasso has penalty ``alpha``."""

    def __init__(self, num_images: int = 10_000, split: str = "test", seed: int = 0, kl_threshold: float = 0.01,
                 alpha: float = 0.1, batch_size: int = 2000, device: str = "cpu",
                 data_path: str | None = None) -> None:  # fmt: skip
        require(is_int(num_images, 2), "num_images", num_images, "must be an integer >= 2")
        require(split in ("train", "val", "test"), "split", split, "must be train, val or test")
        require(is_int(seed, 0), "seed", seed, "must be an integer >= 0")
        require(is_number(kl_threshold) and kl_threshold >= 0, "kl_threshold", kl_threshold, "must be >= 0")
        require(is_number(alpha) and alpha > 0, "alpha", alpha, "must be a finite number > 0")
        require(is_int(batch_size, 1), "batch_size", batch_size, "must be an integer >= 1")
        self.num_images, self.split, self.seed, self.kl_threshold = num_images, split, seed, kl_threshold
        self.alpha, self.batch_size, self.device, self.data_path = alpha, batch_size, device, data_path

    @classmethod
    def configured(cls, node: DictConfig | None) -> ModelSelection:
        """The scorer of the `udr` settings (betavae/conf/udr/default.yaml); its defaults where a caller has none."""
        return cls() if node is None else instantiate(node)

    def settings(self) -> dict[str, Any]:
        """What the scores were computed with, recorded in selection.npz and summary.json."""
        keys = ("num_images", "split", "seed", "kl_threshold", "alpha", "batch_size", "device")
        return {key: getattr(self, key) for key in keys}

    def representations(self, jobs: list[JobDir], notes: list[str]) -> tuple[list[int], np.ndarray, np.ndarray,
                                                                              np.ndarray]:  # fmt: skip
        """The jobs whose best checkpoint loads (by position; each other one left out alone, its line in
        ``notes``), and their posterior means [M, n, D] and mean KL per latent [M, D] on the same images of their
        data (whose indices [n] come last)."""
        datas: dict[str, Any] = {}
        readable, codes, kls, index = [], [], [], None
        for k, job in enumerate(jobs):
            try:
                run = load_run(job.root, self.device)
                settings = OmegaConf.to_container(run.config.data, resolve=False)
                settings.pop("seed", None)  # the batch order, never the images
                key = json.dumps(settings, sort_keys=True, default=str)
                if key not in datas:
                    datas[key] = data_of(run.config, self.data_path)
            except (RunError, DataError, OSError, ValueError) as err:  # a truncated checkpoint, a moved file, a
                notes.append(f"UDR: {job.root.name} left out: {first_line(err)}")  # device this machine lacks
                continue
            images = datas[key].images(self.split)[0]
            if index is None:
                order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
                index = order[: self.num_images].sort().values
            posterior = encode_all(run.model, images[index], self.batch_size)
            if not torch.isfinite(posterior.mu).all():  # its weights are not finite: nothing to compare
                notes.append(f"UDR: {job.root.name} left out: its posterior means are not finite")
                continue
            codes.append(posterior.mu.double().cpu().numpy())
            kls.append(kl_per_dim(posterior).double().cpu().numpy())
            readable.append(k)
        if len(readable) < 2:
            raise RunError(f"{len(readable)} of its {len(jobs)} seeds could be read; UDR compares two or more")
        return readable, np.stack(codes), np.stack(kls), index.numpy()

    def score(self, sweep: SweepDir, jobs: list[Job]) -> SweepScores:
        started = time.perf_counter()
        groups: dict[str, list[Job]] = {}
        for j in jobs:
            if j["status"] is Status.OK:
                groups.setdefault(j["group"], []).append(j)
        notes = [f"UDR: group {g} has one seed ({members[0]['seed']}); UDR compares seeds and needs two or more"
                 for g, members in groups.items() if len(members) < 2]  # fmt: skip
        compared = {g: sorted(members, key=lambda j: j["seed"]) for g, members in groups.items() if len(members) > 1}
        if not compared:  # nothing to compare: no selection.npz (a stale one goes), the lines say why
            return SweepScores(summary={"keep": {}, "notes": notes}, section=section([], {}, notes),
                               arrays={ARRAYS: None}, notes=notes)  # fmt: skip
        per_job, rows, arrays, kept = {}, [], {}, {}
        for group, members in compared.items():
            try:
                readable, codes, kl, index = self.representations([JobDir(sweep.root / j["job"]) for j in members],
                                                                  notes)  # fmt: skip
            except (RunError, OSError, ValueError) as err:  # too few seeds left, or latent sizes that differ
                notes.append(f"UDR: group {group} left out: {first_line(err)}")
                continue
            members = [members[k] for k in readable]
            found = self.group_scores(codes, kl)
            for k, j in enumerate(members):
                per_job[j["job"]] = {name: float(found[name][k]) for name in SCORES}  # the summary drops a NaN
                if not np.isfinite(found["gaussian_tc"][k]):
                    notes.append(f"UDR: {j['job']}: no Gaussian TC of μ: a latent's mean is the same for every image")
            notes += [f"UDR: {members[k]['job']} has no active latent (every latent's mean KL ≤ {self.kl_threshold} "
                      "nats): it shares no structure with the other seeds, and its UDR is 0"
                      for k in np.flatnonzero(found["active"] == 0)]  # fmt: skip
            best = members[int(np.argmax(found["udr_lasso"]))]
            kept[group] = {"seed": best["seed"], "job": best["job"], "by": "udr_lasso"}
            rows.append((group, members, codes, kl, index, found))
        arrays = {ARRAYS: selection_arrays(rows, self.settings()) if rows else None}  # none: a stale one goes
        summary = {"settings": self.settings(), "keep": kept, "notes": notes,
                   "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
        return SweepScores(per_job, summary, section(rows, kept, notes), arrays, notes)

    def group_scores(self, codes: np.ndarray, kl: np.ndarray) -> dict[str, np.ndarray]:
        """UDR with both matrices, their pairwise scores, each model's label-free scores and active latents."""
        found: dict[str, np.ndarray] = {"active": (kl > self.kl_threshold).sum(axis=1)}
        for matrix in ("lasso", "spearman"):
            pairwise = udr.pairwise_scores(codes, kl, matrix, self.kl_threshold, alpha=self.alpha)
            found[f"pairwise_{matrix}"], found[f"udr_{matrix}"] = pairwise, udr.udr(pairwise)
        found["gaussian_tc"] = np.array([udr.gaussian_total_correlation(c) for c in codes])
        found["mutual_info"] = np.array([udr.mutual_information_score(c) for c in codes])
        return found


def selection_arrays(rows: list[tuple], settings: dict[str, Any]) -> dict[str, np.ndarray]:
    """selection.npz: per job (M in all, groups one after another) its directory name, group, codes [M, n, D]
    (NaN-padded to the widest group's D), KL [M, D], scores and the image indices [M, n]; pairwise matrices
    [M, M], NaN between jobs of different groups (never compared) and on the diagonal."""
    jobs = [j["job"] for _, members, *_ in rows for j in members]
    width, n = max(r[2].shape[2] for r in rows), max(r[2].shape[1] for r in rows)
    m = len(jobs)
    out = {"jobs": np.array(jobs), "groups": np.array([g for g, members, *_ in rows for _ in members]),
           "codes": np.full((m, n, width), np.nan), "kl": np.full((m, width), np.nan),
           "image_indices": np.full((m, n), -1, dtype=np.int64),
           "pairwise_lasso": np.full((m, m), np.nan), "pairwise_spearman": np.full((m, m), np.nan),
           "settings": np.array(json.dumps(settings))}  # fmt: skip
    start = 0
    for _, members, codes, kl, index, found in rows:
        span = slice(start, start + len(members))
        out["codes"][span, : codes.shape[1], : codes.shape[2]] = codes
        out["kl"][span, : kl.shape[1]] = kl
        out["image_indices"][span, : len(index)] = index
        for name in ("pairwise_lasso", "pairwise_spearman"):
            out[name][span, span] = found[name]
        for name in (*SCORES, "active"):
            out.setdefault(name, np.full(m, np.nan))[span] = found[name]
        start += len(members)
    return out


def section(rows: list[tuple], kept: dict[str, dict[str, Any]], notes: list[str]) -> str:
    """summary.md's section: per group, each seed's UDR (both matrices), active latents and label-free scores,
    and the seed UDR keeps."""
    lines = ["## Unsupervised model selection (UDR, no labels)", ""]
    if rows:
        header = ["job group", "seed", "UDR (Lasso)", "UDR (Spearman)", "active latents", "Gaussian TC of μ",
                  "MI of μ", "kept"]  # fmt: skip
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for group, members, _, _, _, found in rows:
        for k, j in enumerate(members):
            keep = "**kept**" if kept.get(group, {}).get("job") == j["job"] else ""
            lines.append(f"| {group} | {j['seed']} | {found['udr_lasso'][k]:.3f} | {found['udr_spearman'][k]:.3f} | "
                         f"{int(found['active'][k])} | {found['gaussian_tc'][k]:.3f} | {found['mutual_info'][k]:.3f} |"
                         f" {keep} |")  # fmt: skip
    lines += ["", *(f"- {note}" for note in notes)] if notes else []
    return "\n".join(lines) + "\n"


def read_selection(sweep_dir: Path) -> dict[str, np.ndarray]:
    """A sweep's selection.npz (no pickles)."""
    with np.load(SweepDir(Path(sweep_dir)).arrays(ARRAYS), allow_pickle=False) as saved:
        return {k: saved[k] for k in saved.files}
