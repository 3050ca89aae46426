"""How well UDR picks disentangled models where the factors are known, and how much its scores move with the
images drawn: `python benchmarks/udr_validation.py <sweep_dir> [--draws 5 --images 1000,2000,5000,10000]`.

From the sweep's summary.json (every job's UDR and supervised scores, as the summary wrote them): the Spearman rank
correlation over jobs of UDR (Lasso, Spearman) with MIG, DCI disentanglement, the FactorVAE and BetaVAE scores,
with a bootstrap 95% interval over jobs; within each group of seeds, how often UDR's pick has a higher MIG than
each other seed and by how much. With --draws: UDR again on other draws of the images, each draw in its own
process, against the spread over seeds. Prints Markdown tables (docs/results.md)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.stats

from betavae.metrics import registry

UDR = tuple(m.key for m in registry.FAMILIES["udr"].metrics if m.legend)  # both matrices' UDR
SUPERVISED = tuple(m.key for m in registry.FAMILIES["disentanglement"].metrics if m.legend)  # MIG, DCI, FV, BV
MIG = SUPERVISED[0]


def rank_correlations(jobs: list[dict], draws: int = 10_000, seed: int = 0) -> list[str]:
    """Spearman ρ of each UDR with each supervised score over the jobs that have both, with a bootstrap 95%
    interval (jobs resampled with replacement)."""
    rng = np.random.default_rng(seed)
    lines = ["| UDR | score | jobs | Spearman ρ | bootstrap 95% interval |", "| --- | --- | --- | --- | --- |"]
    for u in UDR:
        for s in SUPERVISED:
            pairs = np.array([(j[u], j[s]) for j in jobs if j.get(u) is not None and j.get(s) is not None])
            if len(pairs) < 3:
                continue
            rho = scipy.stats.spearmanr(pairs[:, 0], pairs[:, 1])[0]
            boot = []
            for _ in range(draws):
                sample = pairs[rng.integers(len(pairs), size=len(pairs))]
                if np.ptp(sample[:, 0]) > 0 and np.ptp(sample[:, 1]) > 0:
                    boot.append(scipy.stats.spearmanr(sample[:, 0], sample[:, 1])[0])
            lo, hi = np.percentile(boot, [2.5, 97.5])
            lines.append(f"| {u} | {s} | {len(pairs)} | {rho:+.2f} | [{lo:+.2f}, {hi:+.2f}] |")
    return lines


def picks(jobs: list[dict], by: str = UDR[0], score: str = MIG) -> list[str]:
    """Per group: the seed UDR keeps, its MIG, the others', and whether it beats each of them."""
    groups: dict[str, list[dict]] = {}
    for j in jobs:
        if j.get(by) is not None and j.get(score) is not None:
            groups.setdefault(j["group"], []).append(j)
    lines = [f"| group | seeds | kept (by {by}) | its MIG | the others' MIG | beats | MIG gain over the others |",
             "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    wins = total = 0
    gains = []
    for group, members in groups.items():
        kept = max(members, key=lambda j: j[by])
        others = [j[score] for j in members if j is not kept]
        beaten = sum(kept[score] > o for o in others)
        wins, total = wins + beaten, total + len(others)
        gain = kept[score] - statistics.fmean(others)
        gains.append(gain)
        lines.append(f"| {group} | {len(members)} | {kept['seed']} | {kept[score]:.3f} | "
                     f"{', '.join(f'{o:.3f}' for o in others)} | {beaten}/{len(others)} | {gain:+.3f} |")  # fmt: skip
    lines.append(f"| all | | | | | {wins}/{total} | {statistics.fmean(gains):+.3f} (mean) |")
    return lines


def draw_scores(sweep: Path, images: int, seed: int) -> dict[str, dict[str, float]]:
    """Every job's UDR on ``images`` images drawn with ``seed``, computed in a fresh process."""
    code = ("import json, sys; from pathlib import Path; from betavae.metrics.selection import ModelSelection; "
            "from betavae.runs.layout import SweepDir; from betavae.runs.sweep import read_jobs; "
            "from betavae.runs.sweep import label_groups; sweep = SweepDir(Path(sys.argv[1])); "
            "jobs = read_jobs(sweep); label_groups(jobs); "
            "found = ModelSelection(num_images=int(sys.argv[2]), seed=int(sys.argv[3])).score(sweep, jobs); "
            "print(json.dumps(found.per_job))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(sweep), str(images), str(seed)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread_over_draws(sweep: Path, jobs: list[dict], sizes: list[int], draws: int) -> list[str]:
    """Per number of images: the sd of each job's UDR over image draws (median over jobs) against the sd over
    seeds within a group (median over groups, on the summary's draw)."""
    groups: dict[str, list[float]] = {}
    for j in jobs:
        if j.get("udr_lasso") is not None:
            groups.setdefault(j["group"], []).append(j["udr_lasso"])
    over_seeds = statistics.median(statistics.stdev(v) for v in groups.values() if len(v) > 1)
    header = ["images", "UDR (Lasso) sd over draws, median over jobs", "max over jobs",
              "sd over seeds (median over groups)"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for n in sizes:
        found = [draw_scores(sweep, n, seed) for seed in range(1, draws + 1)]
        sds = [statistics.stdev(f[name]["udr_lasso"] for f in found) for name in found[0]]
        lines.append(f"| {n} | {statistics.median(sds):.4f} | {max(sds):.4f} | {over_seeds:.4f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--draws", type=int, default=0, help="image draws per size for the spread table (0: none)")
    parser.add_argument("--images", default="1000,2000,5000,10000", help="numbers of images for the spread table")
    args = parser.parse_args()
    summary = json.loads((args.sweep / "summary.json").read_text())
    jobs = [j for j in summary["jobs"] if j["status"] == "ok"]
    if any(s in j for j in jobs for s in SUPERVISED):
        print("\n".join(rank_correlations(jobs)), "\n")
        print("\n".join(picks(jobs)), "\n")
    if args.draws:
        sizes = [int(n) for n in args.images.split(",")]
        print("\n".join(spread_over_draws(args.sweep, jobs, sizes, args.draws)))


if __name__ == "__main__":
    main()
