"""What the shapes data and the disentanglement scores cost, at their default sizes, on one core: rendering the
grid, encoding it, each score, and a job's whole scoring with 0.12's five scores and with 0.13's defaults, for
trained runs (`python benchmarks/disentanglement_cost.py <job dir> ...`).
Each run is timed in its own process, as a job computes them.

    OMP_NUM_THREADS=1 python benchmarks/disentanglement_cost.py multirun/results-shapes/beta=4,*seed=1*
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def timed(action) -> tuple[float, object]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(run_dir: Path) -> dict[str, float]:
    """Seconds of each step for one run, in this process."""
    import torch
    from hydra.utils import instantiate

    from betavae.data.shapes import render
    from betavae.metrics import disentanglement as d
    from betavae.metrics.downstream import sample_efficiency
    from betavae.metrics.infomec import infomec
    from betavae.metrics.irs import irs
    from betavae.metrics.modularity import explicitness, modularity
    from betavae.model.run import load_run

    torch.set_num_threads(1)
    run = load_run(run_dir)
    data = instantiate(run.config.data)
    seconds = {"render (first in the process)": timed(lambda: render(data.image_size, data.factors))[0]}
    seconds["render (again)"] = statistics.median(timed(lambda: render(data.image_size, data.factors))[0]
                                                  for _ in range(3))  # fmt: skip
    data.setup()
    scorer = instantiate(run.config.disentanglement)
    seconds["encode the grid"], codes = timed(lambda: d.grid_means(run.model, data))
    sizes = [len(f) for f in data.factors]
    rng = np.random.default_rng(0)
    sample = d.factor_sampler(sizes, rng)

    def codes_of(f: np.ndarray) -> np.ndarray:
        return codes[np.ravel_multi_index(tuple(f.T), sizes)]

    train, test = sample(scorer.num_train), sample(scorer.num_test)
    arrays = (codes_of(train), train, codes_of(test), test)
    seconds["MIG"] = timed(lambda: d.mig(arrays[0], train, scorer.bins))[0]
    seconds["DCI"], (_, trees) = timed(lambda: d.importances(*arrays))
    seconds["SAP"] = timed(lambda: d.sap(*arrays))[0]
    k, sizes_of = len(sizes), (scorer.batch_size, scorer.num_train, scorer.num_test)
    seconds["FactorVAE"] = timed(
        lambda: d.factorvae_score(codes_of, sample, k, rng, *sizes_of, scorer.num_variance_estimate)
    )[0]
    seconds["BetaVAE"] = timed(lambda: d.betavae_score(codes_of, sample, k, rng, *sizes_of))[0]
    seconds["modularity and explicitness"] = timed(lambda: (modularity(arrays[0], train), explicitness(*arrays)))[0]
    seconds["IRS"] = timed(lambda: irs(arrays[0], train))[0]
    seconds["InfoMEC"] = timed(lambda: infomec(arrays[0], train))[0]
    seconds["sample efficiency (DCI's trees reused)"] = timed(lambda: sample_efficiency(*arrays, known={"gbt": trees}))[
        0
    ]
    before = d.DisentanglementScorer(**{**scorer.settings(), "families": ["disentanglement"]})
    seconds["all scores, 0.12's five (a job's scoring)"] = timed(lambda: before.scores(run.model, data))[0]
    seconds["all scores, 0.13's defaults (a job's scoring)"] = timed(lambda: scorer.scores(run.model, data))[0]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.runs[0])))
        return
    found = []
    for run in args.runs:
        out = subprocess.run([sys.executable, __file__, "--child", str(run)], capture_output=True, text=True,
                             check=True)  # fmt: skip
        found.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"| step | seconds, median of {len(found)} run(s) (min – max) |\n| --- | --- |")
    for step in found[0]:
        values = [f[step] for f in found]
        print(f"| {step} | {statistics.median(values):.2f} ({min(values):.2f} – {max(values):.2f}) |")


if __name__ == "__main__":
    main()
