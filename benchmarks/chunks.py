"""What passes without gradients cost on a CPU by how many images they take at once: each network's encoder and
decoder and the FID features at 2,000 and at CPU_CHUNK rows (one core, in this process: the component), then
`python -m betavae.evaluate` with FID on all 10,000 test images as whole processes, this tree against another
checkout (`--before`, e.g. a worktree of the commit before the change), alternated, ratio of medians.

    OMP_NUM_THREADS=1 python benchmarks/chunks.py --before /tmp/before --run <run dir> [<run dir> ...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def passes(repeats: int = 5) -> dict[str, dict[str, float]]:
    """Median seconds per 4,000 images of each pass at 2,000 and at CPU_CHUNK rows at a time, on one thread."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from betavae.metrics.fid import load_features
    from betavae.model.networks import CPU_CHUNK

    torch.set_num_threads(1)
    nets = {}
    for name, overrides in (("mlp", []), ("conv", ["model=conv"]), ("locatello", ["experiment=shapes3d_smoke"])):
        with initialize_config_dir(str(REPO / "betavae" / "conf"), version_base="1.3"):
            nets[name] = instantiate(compose("train", overrides=overrides).model.net).eval()
    found = {}
    with torch.inference_mode():
        for name, net in nets.items():
            x, z = torch.rand(4000, math.prod(net.image_shape)), torch.randn(4000, net.latent_dim)
            found[f"{name} encoder"] = lambda n, net=net, x=x: [net.encode(p) for p in x.split(n)]
            found[f"{name} decoder"] = lambda n, net=net, z=z: [net.decode_mean(p) for p in z.split(n)]
        features, images = load_features(), torch.rand(4000, 1, 28, 28)
        found["FID features"] = lambda n: [features.body(p) for p in images.split(n)]
        return {key: {str(n): statistics.median(seconds(partial(run, n)) for _ in range(repeats))
                      for n in (2000, CPU_CHUNK)} for key, run in found.items()}  # fmt: skip


def seconds(action) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def evaluate_seconds(tree: Path, run: Path) -> float:
    """Wall seconds of `python -m betavae.evaluate` of ``run`` from ``tree`` (FID on every test image, no cache)."""
    cache = run.parent / f".fid-cache-{os.getpid()}-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "betavae.evaluate", f"run_dir={run}", "eval.figures=false", "eval.probe=false",
               "eval.iw_samples=1", f"fid.cache_dir={cache}"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before the change")
    parser.add_argument("--run", type=Path, nargs="+", required=True, help="trained run directories to evaluate")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = {"passes (s per 4,000 images, one thread)": passes()}
    for run in args.run:
        times = {"before": [], "after": []}
        for _ in range(args.repeats):
            times["before"].append(evaluate_seconds(args.before, run))
            times["after"].append(evaluate_seconds(REPO, run))
        result[f"evaluate {run.name} (s)"] = {**times, "ratio of medians (before / after)": statistics.median(
            times["before"]) / statistics.median(times["after"])}  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
