"""A β sweep run sequentially (Hydra's basic launcher) and with `hydra/launcher=joblib` running jobs at once.

Whole processes of the real command (default callbacks and FID), alternated round by round, each into a fresh
sweep directory; prints every wall time, the medians, their ratio, and the parallel sweep against one job's share
of the sequential one (the sequential sweep's time divided by its job count).

    python benchmarks/launchers.py [--rounds 2] [--epochs 3] [--betas 0.1,0.5,1.0,2.0] [--n-jobs 2]
    python benchmarks/launchers.py --device cuda --epochs 30 --betas 0.1,0.5,1.0 --n-jobs 3  # jobs sharing one GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from train_speed import wall_time  # benchmarks/ is the script's directory, so on sys.path


def sweep_seconds(betas: str, launcher: list[str], epochs: int, device: str) -> float:
    """Wall time of one multirun over ``betas`` with the given launcher overrides."""
    with tempfile.TemporaryDirectory() as root:
        command = [sys.executable, "-m", "betavae.train", "-m", f"beta={betas}", f"trainer.max_epochs={epochs}",
                   f"hydra.sweep.dir={root}/sweep", f"fid.cache_dir={root}/fid", *launcher]  # fmt: skip
        return wall_time(command + (["trainer=gpu"] if device == "cuda" else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--betas", default="0.1,0.5,1.0,2.0")
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    parallel = f"joblib n_jobs={args.n_jobs}"
    sides = {"sequential": [], parallel: ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"]}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, launcher in sides.items():
            times[name].append(sweep_seconds(args.betas, launcher, args.epochs, args.device))
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.1f} s over {args.rounds} rounds {[round(t, 1) for t in times[name]]}")
    jobs = len(args.betas.split(","))
    print(f"{parallel} / sequential: {medians[parallel] / medians['sequential']:.2f}")
    print(f"{parallel} / one job ({jobs} jobs): {medians[parallel] / (medians['sequential'] / jobs):.2f}")


if __name__ == "__main__":
    main()
