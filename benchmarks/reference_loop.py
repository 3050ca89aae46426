"""The speed references: the same β-VAE trained on the same in-memory data by a minimal hand-written PyTorch loop
(``--loop hand``) or by a bare LightningModule under a bare Trainer (``--loop lightning``: no callbacks, logger,
checkpoints, progress bar or validation), to separate Lightning's own per-step cost from betavae's.

Run as its own process by benchmarks/train_speed.py, so no side shares a process, allocator or thread pool with
another. The 55,000 training images are loaded as betavae loads them, converted to floats once and kept on the
device; each epoch draws a seeded permutation and cuts it into batches of 128, the last one partial (430 steps,
as betavae's training loader), with fused Adam; subnormal floats are flushed to zero unless --keep-denormals,
as betavae does unless flush_denormal=false.

    python benchmarks/reference_loop.py --epochs 3 [--loop lightning] [--device cuda]
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import lightning.pytorch as pl
import torch

from betavae.data import FashionMNISTDataModule
from betavae.model import MLPVAE
from betavae.model.objectives import gaussian_kl


def batches(images: torch.Tensor, epoch: int, batch_size: int) -> Iterator[torch.Tensor]:
    """One epoch of shuffled batches, seeded by the epoch."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch)).to(images.device)
    yield from (images[idx] for idx in order.split(batch_size))


def loss_of(model: MLPVAE, x: torch.Tensor) -> torch.Tensor:
    """The β = 1 objective: recon + KL, in nats per image."""
    logits, mu, logvar = model(x)
    return (model.nll(logits, x).sum() + gaussian_kl(mu, logvar).sum()) / len(x)


class Bare(pl.LightningModule):
    """The hand loop's step under Lightning: manual optimization, nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.net, self.automatic_optimization = MLPVAE(), False

    def training_step(self, x: torch.Tensor, batch_idx: int) -> None:
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss_of(self.net, x))
        optimizer.step()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.net.parameters(), lr=1e-3, fused=True)


class Epochs:
    """The batches of successive epochs, for Lightning (which re-iterates its loader each epoch)."""

    def __init__(self, images: torch.Tensor, batch_size: int) -> None:
        self.images, self.batch_size, self.epoch = images, batch_size, 0

    def __len__(self) -> int:
        return -(-len(self.images) // self.batch_size)

    def __iter__(self) -> Iterator[torch.Tensor]:
        self.epoch += 1
        return batches(self.images, self.epoch - 1, self.batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--loop", default="hand", choices=["hand", "lightning"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--keep-denormals", action="store_true", help="as betavae's flush_denormal=false")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_flush_denormal(not args.keep_denormals)  # the same numerics as betavae's default
    torch.manual_seed(0)
    images = FashionMNISTDataModule().images("train")[0].to(device)
    if args.loop == "lightning":
        trainer = pl.Trainer(max_epochs=args.epochs, accelerator=device.type if device.type == "cpu" else "gpu",
                             devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, limit_val_batches=0)  # fmt: skip
        trainer.fit(Bare(), train_dataloaders=Epochs(images, args.batch_size))
    else:
        model = MLPVAE().to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        for epoch in range(args.epochs):
            for x in batches(images, epoch, args.batch_size):
                optimizer.zero_grad(set_to_none=True)
                loss_of(model, x).backward()
                optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
