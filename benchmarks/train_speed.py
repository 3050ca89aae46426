"""Training-epoch time of the project (Lightning + in-memory DataModule) against a hand-written PyTorch loop.

Both train the same MLP β-VAE (batch 128, Adam fused) on the 55,000 training images, side by side in one
process, alternating epoch by epoch so machine noise hits both alike. Prints seconds per epoch and the ratio.

    python benchmarks/train_speed.py [--rounds 6]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

from betavae.data import FashionMNISTDataModule
from betavae.loss import beta_vae_loss
from betavae.model import MLPVAE
from betavae.module import BetaVAEModule


class EpochTimer(pl.Callback):
    """Wall time of each training epoch, from its first batch fetch to its end hook."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.times.append(time.perf_counter() - self._start)


def hand_loop(images: torch.Tensor, epochs: int, batch_size: int = 128) -> list[float]:
    """The reference: float images in memory, a permutation per epoch, forward/backward/step."""
    model = MLPVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(len(images)).split(batch_size):
            x = images[idx]
            logits, mu, logvar = model(x)
            loss = beta_vae_loss(logits, x, mu, logvar, 1.0).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def lightning_loop(datamodule: FashionMNISTDataModule, epochs: int) -> list[float]:
    """The project's path: BetaVAEModule under a Lightning Trainer with TensorBoard logging and progress bar."""
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as logs:
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            limit_val_batches=0,
            enable_checkpointing=False,
            enable_model_summary=False,
            logger=pl.loggers.TensorBoardLogger(logs, name="", version=""),
            callbacks=[timer, TQDMProgressBar(refresh_rate=10)],  # as conf/train.yaml sets it
            default_root_dir=logs,
        )
        trainer.fit(BetaVAEModule(MLPVAE(), beta=1.0, lr=1e-3), datamodule=datamodule)
    return timer.times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="pairs of epochs (one hand-written, one betavae)")
    args = parser.parse_args()
    datamodule = FashionMNISTDataModule()
    datamodule.setup("fit")
    images = datamodule.images("train")[0]
    hand_loop(images, 1)  # warm-up: the first epochs run slower on a cold CPU
    hand, project = [], []
    for _ in range(args.rounds):
        hand += hand_loop(images, 1)
        with contextlib.redirect_stdout(io.StringIO()):  # the progress bar still renders, out of sight
            project += lightning_loop(datamodule, 1)
    ratios = [p / h for h, p in zip(hand, project, strict=True)]
    print(f"torch {torch.__version__}, lightning {pl.__version__}, {torch.get_num_threads()} threads")
    print(f"hand-written loop  : median {statistics.median(hand):.2f} s/epoch {[round(t, 2) for t in hand]}")
    print(f"betavae (Lightning): median {statistics.median(project):.2f} s/epoch {[round(t, 2) for t in project]}")
    print(f"ratio betavae / hand-written, median of {len(ratios)} side-by-side pairs: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
