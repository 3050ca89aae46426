"""Which disentanglement scores agree (Locatello et al. 2019, Figure 4, on our models): every job of a sweep scored
again from its saved disentanglement.npz with the families added in 0.13 (modularity and explicitness, IRS,
InfoMEC, sample efficiency; no retraining), beside the scores its test pass logged and the sweep summary's UDR,
and one diagnostic, modularity over the active latents alone (Var μ > 0.01, as MIG and DCI count them);
then Spearman's ρ between every pair of scores over the jobs, with a 95 % bootstrap interval (jobs drawn with
replacement). Writes agreement.json (every job's scores, each pair's ρ and interval) and agreement.md into the
output folder.

    OMP_NUM_THREADS=1 python benchmarks/agreement.py multirun/results-models benchmarks/results_0.13/agreement
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

import numpy as np
import scipy.stats

from betavae.metrics import registry

NEW = ["modularity", "irs", "infomec", "sample_efficiency"]
SCORES = registry.FAMILIES["disentanglement"].metrics
LOGGED = [m.key for m in SCORES if not m.key.endswith(registry.SAMPLED)]  # the five of 0.12, on means
INFORMATIVENESS = next(m.key for m in SCORES if m.name == "dci_informativeness")
ACROSS = ["udr_lasso", "udr_spearman"]  # per job, from the sweep summary (its group's seeds)
ORDER = ["mig", "dci_disentanglement", "dci_completeness", "dci_informativeness", "sap", "factorvae_score",
         "betavae_score", "modularity", "modularity_active", "explicitness", "irs", "infomec_m", "infomec_c",
         "infomec_e", "sample_efficiency", "sample_efficiency_gbt", "downstream_lr_10000", "downstream_gbt_10000",
         "udr_lasso", "udr_spearman"]  # fmt: skip


def rescore(job: Path, informativeness: float) -> dict[str, float]:
    """The new families' scores of one job from its saved arrays. The trees' accuracy after all 10,000 codes is
    the job's logged DCI informativeness: the same trees (seed, codes and factors), so they are not fitted again."""
    from betavae.metrics.disentanglement import CODE_ARRAYS, scores_from_codes
    from betavae.metrics.downstream import sample_efficiency
    from betavae.metrics.information import active_latents
    from betavae.metrics.modularity import modularity

    saved = np.load(job / "disentanglement.npz")
    settings = json.loads(str(saved["settings"]))
    arrays = [saved[key] for key in CODE_ARRAYS]
    found = scores_from_codes(*arrays, settings["bins"], settings["seed"], families=NEW[:-1])
    found |= sample_efficiency(*arrays, settings["seed"], known={"gbt": np.array([informativeness])})
    active = active_latents(arrays[0])  # a diagnostic: modularity without the latents MIG and DCI count as silent
    found["modularity_active"] = modularity(arrays[0][:, active], arrays[1], settings["bins"]) if active.any() else 0.0
    return found


def spearman(table: dict[str, np.ndarray], a: str, b: str, draws: int, rng: np.random.Generator) -> dict:
    """Spearman's ρ of scores a and b over the jobs that have both, and its 95 % percentile bootstrap interval."""
    x, y = table[a], table[b]
    both = np.isfinite(x) & np.isfinite(y)
    x, y = x[both], y[both]
    rho = scipy.stats.spearmanr(x, y).statistic
    boot = []
    for _ in range(draws):
        pick = rng.integers(len(x), size=len(x))
        if np.ptp(x[pick]) > 0 and np.ptp(y[pick]) > 0:
            boot.append(scipy.stats.spearmanr(x[pick], y[pick]).statistic)
    low, high = np.percentile(boot, [2.5, 97.5])
    return {"a": a, "b": b, "n": int(both.sum()), "rho": float(rho), "ci95": [float(low), float(high)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--draws", type=int, default=2000)
    args = parser.parse_args()
    summary = json.loads((args.sweep / "summary.json").read_text())
    jobs = [
        j for j in summary["jobs"] if j["status"] == "ok" and (args.sweep / j["job"] / "disentanglement.npz").exists()
    ]
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        rescored = pool.starmap(rescore, [(args.sweep / j["job"], j[INFORMATIVENESS]) for j in jobs])
    rows = []
    for job, new in zip(jobs, rescored, strict=True):
        row = {"job": job["job"], "group": job["group"], "seed": job["seed"]}
        row |= {k.split("/")[-1]: job[k] for k in LOGGED + ACROSS if k in job} | new
        rows.append(row)
    keys = [k for k in ORDER if all(k in r for r in rows)]
    table = {k: np.array([r[k] for r in rows], dtype=float) for k in keys}
    rng = np.random.default_rng(0)
    pairs = [spearman(table, a, b, args.draws, rng) for i, a in enumerate(keys) for b in keys[i + 1 :]]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agreement.json").write_text(json.dumps({"jobs": rows, "pairs": pairs}, indent=1, allow_nan=False))
    rho = {(p["a"], p["b"]): p for p in pairs}
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for a in keys:
        cells = []
        for b in keys:
            p = rho.get((a, b)) or rho.get((b, a))
            cells.append("" if p is None else f"{p['rho']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    (args.out / "agreement.md").write_text("\n".join(lines) + "\n")
    print(f"{len(rows)} jobs, {len(keys)} scores: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
