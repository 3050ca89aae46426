"""Seconds per training epoch of `python -m betavae.train`, as a user runs it, against a hand-written loop.

Both sides are whole processes: the real command (Hydra, Lightning, logging, checkpoints, the test pass) and
benchmarks/reference_loop.py. Each is run for --short and --long epochs; the difference divided by the extra
epochs is the cost of one epoch, with start-up and data loading cancelled. For betavae two differences are
printed: of the whole process, and of the run's own training time (`wall_time_s`, Lightning's Timer: the
epochs with their validation, checkpoints and per-epoch callbacks). The ratio uses the latter, because the work
after training (the test pass, the probe, FID, fit-end figures) depends on how trained the model is, so it does
not cancel between runs of different lengths. Rounds alternate the sides (reference, then each betavae
variant) so that machine drift hits all alike; the result is the median over rounds of each variant's
per-epoch cost divided by the same round's reference.

Variants: `train` (callbacks=none, no validation: the training epoch alone), `val` (callbacks=none with the
validation pass), `default` (the default callbacks with validation; FID runs at fit end and cancels).

    python benchmarks/train_speed.py [--rounds 3] [--device cuda] [--variants train,val,default]
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


def reference(epochs: int, device: str) -> tuple[float, float]:
    """Wall time of the hand-written loop for ``epochs`` epochs (twice: it is all training)."""
    seconds = wall_time([sys.executable, str(HERE / "reference_loop.py"), f"--epochs={epochs}", f"--device={device}"])
    return seconds, seconds


def betavae(epochs: int, device: str, overrides: list[str]) -> tuple[float, float]:
    """Wall time of `python -m betavae.train` for ``epochs`` epochs into a fresh run directory, and the training
    time it reports."""
    accelerator = "gpu" if device == "cuda" else "cpu"
    with tempfile.TemporaryDirectory() as run:
        seconds = wall_time([sys.executable, "-m", "betavae.train", f"trainer.max_epochs={epochs}", "fid=none",
                             f"trainer.accelerator={accelerator}", f"hydra.run.dir={run}", *overrides])  # fmt: skip
        return seconds, json.loads((Path(run) / "metrics.json").read_text())["wall_time_s"]


def per_epoch(run, short: int, long: int) -> tuple[float, float]:
    """Cost of one epoch, (whole process, training time): (time of ``long`` − of ``short`` epochs) / (long − short)."""
    a, b = run(short), run(long)
    return (b[0] - a[0]) / (long - short), (b[1] - a[1]) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--short", type=int, default=1)
    parser.add_argument("--long", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--variants", default="train,val,default")
    args = parser.parse_args()
    variants = args.variants.split(",")
    process: dict[str, list[float]] = {name: [] for name in ["reference", *variants]}
    training: dict[str, list[float]] = {name: [] for name in process}
    for round_ in range(args.rounds):
        for name in process:
            run = (lambda n: reference(n, args.device)) if name == "reference" else (
                lambda n, o=VARIANTS[name]: betavae(n, args.device, o))  # fmt: skip
            whole, train = per_epoch(run, args.short, args.long)
            process[name].append(whole)
            training[name].append(train)
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in training.items()), flush=True)
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} threads, "
          f"epochs {args.short} and {args.long}, {args.rounds} rounds; s/epoch")  # fmt: skip
    for name in process:
        line = f"{name:>9}: training {statistics.median(training[name]):.2f} {[round(v, 2) for v in training[name]]}"
        if name != "reference":
            ratios = [v / r for v, r in zip(training[name], training["reference"], strict=True)]
            line += f", ratio {statistics.median(ratios):.2f} {[round(r, 2) for r in ratios]}"
            line += f"; whole process {statistics.median(process[name]):.2f} {[round(v, 2) for v in process[name]]}"
        print(line)


if __name__ == "__main__":
    main()
