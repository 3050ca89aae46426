"""Per-epoch and end-of-fit cost of each default callback, from Lightning's SimpleProfiler.

Runs a short fit (few training batches, the full validation set) with every callback of
betavae/conf/callbacks/default.yaml and prints, per callback, seconds per epoch (hooks that run every epoch,
averaged) and seconds once (start and end of fitting), next to the time of a training epoch measured
on the same run.

    python benchmarks/callback_cost.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
from collections import defaultdict
from pathlib import Path

import lightning.pytorch as pl
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler

from betavae.data import FashionMNISTDataModule
from betavae.model.module import BetaVAEModule
from betavae.model.networks import MLPVAE

CONF = Path(__file__).resolve().parents[1] / "betavae" / "conf"
ONCE = ("on_train_start", "on_fit_end", "on_fit_start", "setup", "teardown", "on_train_end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train")
    skip = ("checkpoint", "progress_bar", "fid")  # Lightning's own, and FID runs only at test time
    callbacks = [instantiate(node) for name, node in cfg.callbacks.items() if name not in skip]
    ours = {type(callback).__name__ for callback in callbacks}
    profiler = SimpleProfiler()
    with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(io.StringIO()):
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            accelerator="cpu",
            default_root_dir=root,
            logger=pl.loggers.TensorBoardLogger(root, name="tensorboard", version=""),
            callbacks=callbacks,
            enable_checkpointing=False,
            profiler=profiler,
        )
        trainer.fit(BetaVAEModule(MLPVAE()), datamodule=FashionMNISTDataModule())
    per_epoch, once = defaultdict(float), defaultdict(float)
    for action, durations in profiler.recorded_durations.items():
        if not action.startswith("[Callback]"):
            continue
        name, hook = action.removeprefix("[Callback]").rsplit(".", 1)
        name = name.split("{")[0].rsplit(".", 1)[-1]
        if name not in ours:  # Lightning's own progress bar and model summary
            continue
        (once if hook in ONCE else per_epoch)[name] += sum(durations)
    batches = profiler.recorded_durations["run_training_batch"]
    epoch_s = sum(batches) / len(batches) * 430  # a full epoch has 430 batches of 128
    print(f"{'callback':<18} {'s / epoch':>10} {'s once':>8}")
    for name in sorted(set(per_epoch) | set(once)):
        print(f"{name:<18} {per_epoch[name] / args.epochs:>10.3f} {once[name]:>8.2f}")
    total = sum(per_epoch.values()) / args.epochs
    print(f"{'all callbacks':<18} {total:>10.3f} {sum(once.values()):>8.2f}")
    print(f"training batches of a full epoch, timed on this run: {epoch_s:.2f} s")
    print(f"callbacks per epoch / training epoch: {total / epoch_s:.3f}")


if __name__ == "__main__":
    main()
