"""What UDR adds to a sweep's summary step, as users run it: `python -m betavae.summarize sweep_dir=<copy>` against
the same command with `udr=none`, each a whole process on one core, alternated, the difference and ratio of the
medians (`python benchmarks/udr_cost.py <sweep_dir> [--repeats 3]`). It summarises a copy of the sweep (udr=none
would remove its selection.npz) and prints one Markdown row; the summary's own `udr.seconds` is in summary.json."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def summarize_seconds(sweep: Path, *overrides: str) -> float:
    """Wall seconds of one `python -m betavae.summarize` process on core 0, one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = ["taskset", "-c", "0", sys.executable, "-m", "betavae.summarize", f"sweep_dir={sweep}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / args.sweep.name
        shutil.copytree(args.sweep, copy)
        with_udr, without = [], []
        for _ in range(args.repeats):
            without.append(summarize_seconds(copy, "udr=none"))
            with_udr.append(summarize_seconds(copy))
        jobs = len(json.loads((copy / "summary.json").read_text())["jobs"])
        inside = json.loads((copy / "summary.json").read_text())["udr"]["seconds"]
    a, b = statistics.median(with_udr), statistics.median(without)
    print("| sweep | jobs | summarize (s, median) | with udr=none (s) | UDR's cost (s) | ratio | UDR step inside (s) |")
    print("|" + " --- |" * 7)
    print(f"| {args.sweep.name} | {jobs} | {a:.1f} | {b:.1f} | {a - b:.1f} | {a / b:.2f} | {inside:.1f} |")


if __name__ == "__main__":
    main()
