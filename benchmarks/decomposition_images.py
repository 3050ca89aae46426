"""How the KL's decomposition of a trained run depends on the number n of images its aggregate posterior mixes.

MI ≤ log n: where the test set's estimate sits at log 10,000 = 9.21, more images show whether it is the data's
ceiling or the model's information. For each run and n: the first n test images (n ≤ 10,000), else the first
n training images, with MI, TC, dimension-wise KL, their standard errors and seconds per estimate.

    python benchmarks/decomposition_images.py RUN_DIR [RUN_DIR ...] [--sizes 2500,10000,40000]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from hydra.utils import instantiate

from betavae.metrics.latents import kl_decomposition
from betavae.model.networks import encode_all
from betavae.model.run import load_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--sizes", default="2500,10000,40000", help="n values, comma-separated")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")]
    print("| run | images | n | log n | MI | TC | dim-wise KL | s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for run in args.runs:
        loaded = load_run(run)
        data = instantiate(loaded.config.data)
        test, train = data.images("test")[0], data.images("train")[0]
        for n in sizes:
            split, images = ("test", test) if n <= len(test) else ("train", train)
            start = time.perf_counter()
            parts = kl_decomposition(encode_all(loaded.model, images[:n]))
            seconds = time.perf_counter() - start
            cells = " | ".join(f"{parts[p]:.2f} ± {parts[f'{p}_se']:.2f}" for p in ("mi", "tc", "dimwise_kl"))
            print(f"| {run.name} | {split} | {n:,} | {math.log(n):.2f} | {cells} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
