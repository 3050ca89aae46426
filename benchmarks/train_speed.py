"""Seconds per training epoch of `python -m betavae.train`, as a user runs it, against a hand-written loop.

Both sides are whole processes: the real command (Hydra, Lightning, logging, checkpoints, the test pass) and
benchmarks/reference_loop.py. Each is run for --short and --long epochs; the difference divided by the extra
epochs is the cost of one epoch, with start-up, data loading, the test pass and fit-end figures cancelled.
Rounds alternate the sides (reference, then each betavae variant) so that machine drift hits all alike; the
result is the median over rounds of each variant's per-epoch cost divided by the same round's reference.

Variants: `train` (callbacks=none, no validation: the training epoch alone), `val` (callbacks=none with the
validation pass), `default` (the default callbacks with validation; FID runs at fit end and cancels).

    python benchmarks/train_speed.py [--rounds 3] [--device cuda] [--variants train,val,default]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
VARIANTS = {
    "train": ["callbacks=none", "trainer.limit_val_batches=0"],
    "val": ["callbacks=none"],
    "default": ["callbacks=default"],
}


def wall_time(command: list[str]) -> float:
    """Seconds the command takes as a whole process (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def reference(epochs: int, device: str) -> float:
    """Wall time of the hand-written loop for ``epochs`` epochs."""
    return wall_time([sys.executable, str(HERE / "reference_loop.py"), f"--epochs={epochs}", f"--device={device}"])


def betavae(epochs: int, device: str, overrides: list[str]) -> float:
    """Wall time of `python -m betavae.train` for ``epochs`` epochs into a fresh run directory."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as run:
        return wall_time([sys.executable, "-m", "betavae.train", f"trainer.max_epochs={epochs}", "fid=none",
                          f"trainer.accelerator={accelerator}", f"hydra.run.dir={run}", *overrides])  # fmt: skip


def per_epoch(run, short: int, long: int) -> float:
    """Cost of one epoch: (time of ``long`` epochs − time of ``short`` epochs) / (long − short)."""
    return (run(long) - run(short)) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", type=int, default=1)
    parser.add_argument("--long", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--variants", default="train,val,default")
    args = parser.parse_args()
    variants = args.variants.split(",")
    times: dict[str, list[float]] = {name: [] for name in ["reference", *variants]}
    for round_ in range(args.rounds):
        times["reference"].append(per_epoch(lambda n: reference(n, args.device), args.short, args.long))
        for name in variants:
            times[name].append(per_epoch(lambda n, o=VARIANTS[name]: betavae(n, args.device, o), args.short, args.long))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items()), flush=True)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"epochs {args.short} and {args.long}, {args.rounds} rounds")  # fmt: skip
    for name, values in times.items():
        line = f"{name:>9}: median {statistics.median(values):.2f} s/epoch {[round(v, 2) for v in values]}"
        if name != "reference":
            ratios = [v / r for v, r in zip(values, times["reference"], strict=True)]
            line += f", ratio to reference: median {statistics.median(ratios):.2f} {[round(r, 2) for r in ratios]}"
        print(line)


if __name__ == "__main__":
    main()
