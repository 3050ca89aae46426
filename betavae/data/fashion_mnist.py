"""Fashion-MNIST (`data=fashion_mnist`): the official 60,000 training images split into train and val by a fixed
seed, and the 10,000 test images, labelled by class."""

from __future__ import annotations

import logging

import torch

from betavae.base.config import is_int, require, require_seed
from betavae.base.files import cache_path
from betavae.data.idx import SPLITS, SYSTEM_DIR, layouts, load_split, locate
from betavae.data.memory import InMemoryDataModule

log = logging.getLogger(__name__)

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


class FashionMNISTDataModule(InMemoryDataModule):
    """Fashion-MNIST from its IDX files: 55,000 train / 5,000 val (by ``split_seed``) / 10,000 test images."""

    name = "fashion_mnist"
    title = "Fashion-MNIST"
    hub_dataset = "zalando-datasets/fashion_mnist"
    classes = groups = CLASS_NAMES
    fid_features = ("fashion", "inception")  # betavae/metrics/fid_features.pt was trained on its training images

    def __init__(
        self,
        image_size: int = 28,
        channels: int = 1,
        root: str | None = None,
        system_dir: str | None = SYSTEM_DIR,
        download: bool = True,
        batch_size: int = 128,
        eval_batch_size: int = 1000,
        val_size: int = 5_000,
        split_seed: int = 42,
        seed: int = 42,
        binarize: bool = False,
        binarize_seed: int = 0,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, val_size, seed, binarize, binarize_seed)
        require(image_size == 28, "image_size", image_size, "must be 28: Fashion-MNIST's images are 28×28")
        require(channels == 1, "channels", channels, "must be 1: Fashion-MNIST's images are gray")
        self.image_size = image_size
        train_images = SPLITS["train"][2]
        require(  # validation picks the best checkpoint, so it needs images
            is_int(val_size, 1) and val_size < train_images,
            "val_size",
            val_size,
            f"must be an integer in [1, {train_images})",
        )
        require_seed("split_seed", split_seed)
        self.root = cache_path("BETAVAE_DATA", given=root)
        self.system_dir, self.download, self.split_seed = system_dir, download, split_seed

    def prepare_data(self) -> None:
        """Find (or download) the files once, on one process."""
        locate(self.root, self.system_dir, self.download)

    def load(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """The IDX files' images and labels, the training images split into train and val by ``split_seed``."""
        files = locate(self.root, self.system_dir, download=False)
        source = next(iter(files.values())).parent
        log.info("Fashion-MNIST from %s", source)
        if source not in layouts(self.root) and any(self.root.glob("*-ubyte*")):
            log.warning(
                "Fashion-MNIST: %s holds only some of the four IDX files, so they came from %s", self.root, source
            )
        images, labels = load_split(files, "train")
        images = images[:, None]  # one channel
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        train, val = order[: len(order) - self.val_size], order[len(order) - self.val_size :]
        test_images, test_labels = load_split(files, "test")
        return {"train": (images[train], labels[train]), "val": (images[val], labels[val]),
                "test": (test_images[:, None], test_labels)}  # fmt: skip
