"""The scores of posterior means against those of one sampled code per image (disentanglement_lib scores both), for
every job of a sweep: each model encodes its factor grid again, and MIG, modularity, IRS and InfoMEC are computed on
both representations from the same factor draws (`disentanglement.representation=[mean,sampled]`; DCI, SAP, the
FactorVAE and BetaVAE scores and the sample efficiency left out for time). Prints a Markdown table of each group's
mean ± sd and writes sampled_codes.json into the output folder.

    OMP_NUM_THREADS=1 python benchmarks/sampled_codes.py multirun/results-models benchmarks/results_0.13/agreement
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SCORES = ["mig", "modularity", "irs", "infomec_m", "infomec_c", "infomec_e"]


def both(job: Path) -> dict[str, float]:
    """One job's scores on means and on sampled codes (keys + _sampled)."""
    import torch
    from hydra.utils import instantiate

    from betavae.metrics.disentanglement import DisentanglementScorer, mig
    from betavae.model.run import load_run

    torch.set_num_threads(1)
    run = load_run(job)
    data = instantiate(run.config.data)
    data.setup()
    recorded = json.loads(str(np.load(job / "disentanglement.npz")["settings"]))
    settings = {k: v for k, v in recorded.items() if k not in ("families", "representation")}
    scorer = DisentanglementScorer(**settings, families=["modularity", "irs", "infomec"],
                                   representation=["mean", "sampled"])  # fmt: skip
    found = scorer.scores(run.model, data)
    out = dict(found.metrics)
    for suffix in ("", "_sampled"):
        out["mig" + suffix] = mig(found.arrays["codes_train" + suffix], found.arrays["factors_train"], scorer.bins)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    summary = json.loads((args.sweep / "summary.json").read_text())
    jobs = [j for j in summary["jobs"] if j["status"] == "ok"]
    rows = [{"job": j["job"], "group": j["group"], "seed": j["seed"], **both(args.sweep / j["job"])} for j in jobs]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sampled_codes.json").write_text(json.dumps(rows, indent=1, allow_nan=False))
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["group"], []).append(row)
    print("| group | " + " | ".join(f"{s} (mean → sampled)" for s in SCORES) + " |")
    print("|---" * (len(SCORES) + 1) + "|")
    for group, members in groups.items():
        cells = []
        for score in SCORES:
            mean, sampled = ([r.get(score + suffix, np.nan) for r in members] for suffix in ("", "_sampled"))
            cells.append(f"{np.mean(mean):.3f} → {np.mean(sampled):.3f}")
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
