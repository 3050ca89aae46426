"""`python -m betavae.metrics.fid_features`: train the FID feature network on the Fashion-MNIST training set.

Trains ``FashionFeatures`` (seeded) on all 60,000 training images, never the test set, measures its test
accuracy, writes the weights to betavae/metrics/fid_features.pt and prints the file's SHA-256, which
betavae/metrics/fid.py then expects (FEATURES_SHA256) along with the accuracy (FEATURES_TEST_ACCURACY).
"""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.data.idx import SYSTEM_DIR
from betavae.data.memory import to_unit
from betavae.metrics.fid import FEATURES_FILE, FashionFeatures, file_sha256

log = logging.getLogger(__name__)


class FeatureClassifier(pl.LightningModule):
    """Cross-entropy training of the feature network, with a one-cycle learning-rate schedule."""

    def __init__(self, lr: float = 2e-3) -> None:
        super().__init__()
        self.network, self.lr = FashionFeatures(), lr

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = F.cross_entropy(self.network.classify(images), labels)
        if batch_idx % 50 == 0:
            self.log("loss", loss, prog_bar=True, logger=False)
        return loss

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.lr, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, self.lr, total_steps=self.trainer.estimated_stepping_batches
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.inference_mode()
def accuracy(network: FashionFeatures, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Percentage of ``images`` (uint8 [N, 28, 28]) classified as ``labels``, in eval mode."""
    network.eval()
    predictions = torch.cat([network.classify(to_unit(batch)).argmax(1) for batch in images.split(1000)])
    return 100.0 * float((predictions == labels).float().mean())


def state_bytes(network: FashionFeatures) -> bytes:
    """The network's weights as torch.save writes them."""
    buffer = io.BytesIO()
    torch.save({k: v.clone() for k, v in network.state_dict().items()}, buffer)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", default=None, help="default: $BETAVAE_DATA or ~/.cache/betavae")
    parser.add_argument("--out", type=Path, default=FEATURES_FILE)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pl.seed_everything(args.seed, workers=True)
    data = FashionMNISTDataModule(root=args.data_root, system_dir=SYSTEM_DIR, val_size=0, seed=args.seed)
    classifier = FeatureClassifier()
    trainer = pl.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        deterministic=True,
    )
    trainer.fit(classifier, datamodule=data)
    test_images, test_labels = data.splits["test"]
    acc = accuracy(classifier.network, test_images, test_labels)
    args.out.write_bytes(state_bytes(classifier.network))
    log.info(
        "test accuracy %.2f%%  weights %s (%d bytes)  sha256 %s",
        acc,
        args.out,
        args.out.stat().st_size,
        file_sha256(args.out),
    )


if __name__ == "__main__":
    main()
