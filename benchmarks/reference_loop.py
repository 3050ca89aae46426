"""The speed reference: a minimal hand-written PyTorch loop training the same β-VAE on the same in-memory data.

Run as its own process by benchmarks/train_speed.py, so neither side shares a process, allocator or thread
pool with the other. The 55,000 training images are loaded as betavae loads them, converted to floats once
and kept on the device; each epoch draws a seeded permutation and takes full batches of 128 (as betavae's
training sampler does), with fused Adam; subnormal floats are flushed to zero unless --keep-denormals, as
betavae does unless flush_denormal=false.

    python benchmarks/reference_loop.py --epochs 3 [--device cuda]
"""

from __future__ import annotations

import argparse

import torch

from betavae.data import FashionMNISTDataModule
from betavae.loss import gaussian_kl
from betavae.model import MLPVAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--keep-denormals", action="store_true", help="as betavae's flush_denormal=false")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_flush_denormal(not args.keep_denormals)  # the same numerics as betavae's default
    torch.manual_seed(0)
    images = FashionMNISTDataModule().images("train")[0].to(device)
    model = MLPVAE().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    steps = len(images) // args.batch_size
    for epoch in range(args.epochs):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch)).to(device)
        for idx in order[: steps * args.batch_size].split(args.batch_size):
            x = images[idx]
            logits, mu, logvar = model(x)
            loss = (model.nll(logits, x).sum() + gaussian_kl(mu, logvar).sum()) / len(x)  # recon + β·KL, β = 1
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
