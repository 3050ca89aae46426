"""A 4-job β sweep run sequentially (Hydra's basic launcher) and with `hydra/launcher=joblib n_jobs=2`.

Whole processes of the real command, alternated round by round, each into a fresh sweep directory; prints
every wall time, the medians and their ratio.

    python benchmarks/launchers.py [--rounds 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from train_speed import wall_time  # benchmarks/ is the script's directory, so on sys.path


def sweep_seconds(launcher: list[str], epochs: int) -> float:
    """Wall time of one 4-job multirun (default callbacks and FID) with the given launcher overrides."""
    with tempfile.TemporaryDirectory() as root:
        command = [sys.executable, "-m", "betavae.train", "-m", "beta=0.1,0.5,1.0,2.0", f"trainer.max_epochs={epochs}",
                   f"hydra.sweep.dir={root}/sweep", f"fid.cache_dir={root}/fid", *launcher]  # fmt: skip
        return wall_time(command)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    sides = {"sequential": [], "joblib n_jobs=2": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, launcher in sides.items():
            times[name].append(sweep_seconds(launcher, args.epochs))
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.1f} s over {args.rounds} rounds {[round(t, 1) for t in times[name]]}")
    print(f"joblib / sequential: {medians['joblib n_jobs=2'] / medians['sequential']:.2f}")


if __name__ == "__main__":
    main()
