"""Seconds per training epoch of `python -m betavae.train`, as a user runs it, against a hand-written loop.

Every side is a whole process: the real command (Hydra, Lightning, logging, checkpoints, the test pass), and
benchmarks/reference_loop.py as the hand-written loop (`reference`) and as a bare LightningModule under a bare
Trainer (`lightning`: what Lightning's loop alone costs over the hand loop). Each is run for --short and --long
epochs; the difference divided by the extra epochs is the cost of one epoch, with start-up and data loading
cancelled. For betavae two differences are printed: of the whole process, and of the run's own training time
(`wall_time_s`, Lightning's Timer: the epochs with their validation, checkpoints and per-epoch callbacks). The
ratio uses the latter, because the work after training (the test pass, the probe, FID, fit-end figures) depends
on how trained the model is, so it does not cancel between runs of different lengths. Rounds alternate the sides
(reference, lightning, then each betavae variant) so that machine drift hits all alike; the result is the median
over rounds of each side's per-epoch cost divided by the same round's reference.

Variants: `train` (callbacks=none, no validation: the training epoch alone), `val` (callbacks=none with the
validation pass), `default` (the default callbacks with validation; FID runs at fit end and cancels), `bf16`
(`train` under trainer.precision=bf16-mixed). Ratios are to --baseline: the hand loop by default, or a variant
(`--loops= --variants train,bf16 --baseline train`: bfloat16 autocast against float32, without the loops).

    python benchmarks/train_speed.py [--rounds 5] [--device cuda] [--variants train,val,default] [--baseline train]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
LOOPS = {"reference": "hand", "lightning": "lightning"}  # reference_loop.py --loop
VARIANTS = {
    "train": ["callbacks=none", "trainer.limit_val_batches=0"],
    "val": ["callbacks=none"],
    "default": ["callbacks=default"],
    "bf16": ["callbacks=none", "trainer.limit_val_batches=0", "trainer.precision=bf16-mixed"],
}


def wall_time(command: list[str]) -> float:
    """Seconds the command takes as a whole process (it must succeed)."""
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


def reference(epochs: int, device: str, loop: str) -> tuple[float, float]:
    """Wall time of a reference loop for ``epochs`` epochs (twice: it is all training)."""
    script = str(HERE / "reference_loop.py")
    seconds = wall_time([sys.executable, script, f"--epochs={epochs}", f"--device={device}", f"--loop={loop}"])
    return seconds, seconds


def betavae(epochs: int, device: str, overrides: list[str]) -> tuple[float, float]:
    """Wall time of `python -m betavae.train` for ``epochs`` epochs into a fresh run directory, and the training
    time it reports."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as run:
        seconds = wall_time([sys.executable, "-m", "betavae.train", f"trainer.max_epochs={epochs}", "fid=none",
                             f"trainer.accelerator={accelerator}", f"hydra.run.dir={run}", *overrides])  # fmt: skip
        return seconds, json.loads((Path(run) / "metrics.json").read_text())["wall_time_s"]


def side(name: str, epochs: int, device: str) -> tuple[float, float]:
    """(whole process, training time) of one side of the comparison for ``epochs`` epochs."""
    if name in LOOPS:
        return reference(epochs, device, LOOPS[name])
    return betavae(epochs, device, VARIANTS[name])


def per_epoch(name: str, device: str, short: int, long: int) -> tuple[float, float]:
    """Cost of one epoch, (whole process, training time): (time of ``long`` − of ``short`` epochs) / (long − short)."""
    a, b = side(name, short, device), side(name, long, device)
    return (b[0] - a[0]) / (long - short), (b[1] - a[1]) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--short", type=int, default=1)
    parser.add_argument("--long", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--variants", default="train,val,default")
    parser.add_argument("--loops", default=",".join(LOOPS), help="reference sides to run (none: --loops=)")
    parser.add_argument("--baseline", default="reference", help="the side ratios are taken to")
    args = parser.parse_args()
    sides = [name for name in (*args.loops.split(","), *args.variants.split(",")) if name]
    process: dict[str, list[float]] = {name: [] for name in sides}
    training: dict[str, list[float]] = {name: [] for name in process}
    for round_ in range(args.rounds):
        for name in process:
            whole, train = per_epoch(name, args.device, args.short, args.long)
            process[name].append(whole)
            training[name].append(train)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in training.items()), flush=True)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"epochs {args.short} and {args.long}, {args.rounds} rounds; s/epoch")  # fmt: skip
    for name in process:
        line = f"{name:>9}: training {statistics.median(training[name]):.2f} {[round(v, 2) for v in training[name]]}"
        if name != args.baseline:
            ratios = [v / r for v, r in zip(training[name], training[args.baseline], strict=True)]
            line += f", ratio {statistics.median(ratios):.3f} {[round(r, 3) for r in ratios]}"
            line += f"; whole process {statistics.median(process[name]):.2f} {[round(v, 2) for v in process[name]]}"
        print(line)


if __name__ == "__main__":
    main()
