"""Fréchet distance between image sets with torchmetrics, on features of a Fashion-MNIST CNN shipped with the
package (or InceptionV3 where its weights can be had), with on-disk caching of the real-image statistics; the
`fid` metric family, on data whose contract names the scorer's feature network."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from betavae.base.config import is_int, require
from betavae.base.errors import ConfigError
from betavae.base.files import atomic, cache_path
from betavae.data.contract import ImageData
from betavae.metrics.scorer import Evaluation, Scorer
from betavae.model.networks import VAE, in_chunks

FEATURES_FILE = Path(__file__).with_name("fid_features.pt")
FEATURES_SHA256 = "f6054465fb7eb38c3fd7588ca2fa7166c305192370cfd71f32faf59b4437f2ef"
FEATURES_TEST_ACCURACY = 92.73  # measured by `python -m betavae.metrics.fid_features`, in percent
INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
log = logging.getLogger(__name__)
REAL_STATS = ("real_features_sum", "real_features_cov_sum", "real_features_num_samples")


class FashionFeatures(nn.Module):
    """A small CNN classifier of Fashion-MNIST; ``forward`` gives its 128-d penultimate layer for FID."""

    num_features = 128

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),  # 14×14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),  # 7×7
            nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(3),  # 3×3
            nn.Flatten(), nn.Linear(64 * 9, self.num_features), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.num_features, 10))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """128-d features of gray 28×28 images in [0, 1], given flat [N, 784] or as [N, 1, 28, 28]."""
        return torch.cat([self.body(part) for part in in_chunks(images.reshape(-1, 1, 28, 28), images.device)])

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits, [N, 10]."""
        return self.head(self(images))


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_features(path: Path = FEATURES_FILE, sha256: str | None = FEATURES_SHA256) -> FashionFeatures:
    """The shipped feature network in eval mode, refusing a weights file whose hash is not the expected one."""
    if not Path(path).is_file():
        raise ConfigError(f"FID feature weights not found: {path}")
    if sha256 is not None and (found := file_sha256(path)) != sha256:
        raise ConfigError(f"FID feature weights {path} have SHA-256 {found}, expected {sha256}: refusing them")
    network = FashionFeatures()
    network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return network.eval().requires_grad_(False)


def inception_weights_path(explicit: str | None) -> Path:
    """torch-fidelity's InceptionV3 weights: the given file, or the torch hub cache; ConfigError if neither."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        raise ConfigError(
            "fid=inception needs torch-fidelity: pip install -e '.[inception]' (or use fid=fashion)"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_WEIGHTS
    path = Path(explicit).expanduser() if explicit else cached
    if not path.is_file():
        raise ConfigError(
            f"fid=inception needs InceptionV3 weights; not found at {path}. Download {INCEPTION_WEIGHTS} "
            "(torch-fidelity's release) and pass fid.inception_weights=<path>, or use fid=fashion"
        )
    return path


class ToInception(nn.Module):
    """InceptionV3's input from images [N, C, H, W] in [0, 1]: rounded to uint8 (torchmetrics' `normalize`
    truncates with byte()) and, gray, repeated to three channels, keeping the wrapped extractor's interface."""

    def __init__(self, inception: nn.Module) -> None:
        super().__init__()
        self.inception = inception

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.is_floating_point():
            images = images.mul(255).round_().to(torch.uint8)
        return self.inception(images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images)


def make_metric(feature: str = "fashion", inception_weights: str | None = None) -> FrechetInceptionDistance:
    """A torchmetrics FID that keeps its real statistics across resets; images go in as floats in [0, 1]. It
    scores the images one process gives it: torchmetrics would otherwise sum its statistics over the DDP
    processes at compute(), a collective that rank 0, scoring alone, would wait in forever."""
    if feature == "fashion":
        return FrechetInceptionDistance(feature=load_features(), reset_real_features=False, sync_on_compute=False)
    if feature == "inception":
        metric = FrechetInceptionDistance(
            feature=2048,
            reset_real_features=False,
            sync_on_compute=False,
            normalize=False,  # ToInception rounds floats to uint8 itself
            feature_extractor_weights_path=str(inception_weights_path(inception_weights)),
        )
        metric.inception = ToInception(metric.inception)
        return metric
    raise ConfigError(f"fid.feature={feature!r}: must be 'fashion' or 'inception'")


def feature_key(metric: FrechetInceptionDistance) -> str:
    """Short hash of the feature network's weights, so cached statistics follow the network."""
    digest = hashlib.sha256()
    for name, tensor in sorted(metric.inception.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def data_key(images: torch.Tensor) -> str:
    """Short hash of the real images' bytes."""
    return hashlib.sha256(images.detach().cpu().contiguous().numpy().tobytes()).hexdigest()[:16]


def arithmetic_key(device: torch.device) -> str:
    """Where and how the features are computed (device type, float32 matmul precision): statistics computed on
    a GPU, or with TF32 or bfloat16 matmuls, differ in their last digits from the CPU's float32 ones."""
    return f"{device.type}-{torch.get_float32_matmul_precision()}"


def batches(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """Float batches in [0, 1] of uint8 or float images, in the shape they are given."""
    for batch in images.split(batch_size):
        yield batch.float().div_(255) if batch.dtype == torch.uint8 else batch


def stats_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the real statistics' values, stored with them so an altered cache is noticed."""
    digest = hashlib.sha256()
    for name in REAL_STATS:
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_real(path: Path, device: torch.device) -> dict[str, torch.Tensor] | None:
    """Cached real statistics if the file loads safely and its contents match their stored hash, else None
    (with a warning): a damaged or altered cache is recomputed, never trusted."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        if stats_digest(state) == state["sha256"]:
            return state
        reason = "its contents do not match their stored hash"
    except Exception as err:  # truncated, random or foreign bytes: any failure means the same here
        reason = f"unreadable ({type(err).__name__})"
    log.warning("FID: ignoring cached real statistics %s: %s; recomputing them", path, reason)
    return None


@torch.inference_mode()
def set_real(
    metric: FrechetInceptionDistance, images: torch.Tensor, cache_dir: str | os.PathLike | None, batch_size: int = 1000
) -> Path | None:
    """Fill the metric's real statistics from ``images``, from the on-disk cache when it holds them."""
    path = None
    if cache_dir is not None:
        key = f"{feature_key(metric)}-{data_key(images)}-{arithmetic_key(metric.device)}"
        path = Path(cache_dir).expanduser() / f"real-{key}.pt"
        if path.is_file() and (state := load_real(path, metric.device)) is not None:
            for name in REAL_STATS:
                setattr(metric, name, state[name])
            log.info("FID: loaded cached real statistics %s", path)
            return path
    for name in REAL_STATS:
        setattr(metric, name, torch.zeros_like(getattr(metric, name)))
    for batch in batches(images.to(metric.device), batch_size):
        metric.update(batch, real=True)
    if path is not None:
        state = {name: getattr(metric, name).cpu() for name in REAL_STATS}
        with atomic(path) as tmp:  # concurrent jobs of a sweep never read a half-written file
            torch.save({**state, "sha256": stats_digest(state)}, tmp)
        log.info("FID: computed and cached real statistics %s", path)
    return path


@torch.inference_mode()
def fid_against_real(
    metric: FrechetInceptionDistance, fake: Iterator[torch.Tensor] | torch.Tensor, batch_size: int = 1000
) -> float:
    """FID of generated images (a tensor, or an iterator of batches) against the metric's real statistics."""
    metric.reset()  # clears the fake statistics only (reset_real_features=False)
    for batch in batches(fake, batch_size) if isinstance(fake, torch.Tensor) else fake:
        metric.update(batch.to(metric.device), real=False)
    return float(metric.compute())


class FIDScorer(Scorer):
    """The `fid` family: FID of a model's decoder means, of prior samples (mean and sd over ``sample_seeds``
    draws) and of reconstructions, against as many real images. The metric is built with the scorer, so missing
    weights stop a run before any training."""

    def __init__(
        self,
        feature: str = "fashion",
        num_images: int | None = None,
        sample_seeds: Sequence[int] = (0, 1, 2),
        batch_size: int = 1000,
        recon: bool = True,
        cache_dir: str | os.PathLike | None = None,
        inception_weights: str | None = None,
    ) -> None:
        require(num_images is None or is_int(num_images, 2), "num_images", num_images, "must be null or >= 2")
        require(is_int(batch_size, 1), "batch_size", batch_size, "must be an integer >= 1")
        seeds = list(sample_seeds) if isinstance(sample_seeds, Sequence) else []
        require(seeds and all(is_int(s, 0) for s in seeds), "sample_seeds", sample_seeds,
                "must be a non-empty list of integers >= 0")  # fmt: skip
        self.feature, self.metric = feature, make_metric(feature, inception_weights)
        self.num_images, self.sample_seeds, self.batch_size, self.recon = num_images, seeds, batch_size, recon
        self.cache_dir = cache_path("BETAVAE_CACHE", "fid", given=cache_dir)
        try:  # now, not after training
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            writable = os.access(self.cache_dir, os.W_OK)
        except OSError:
            writable = False
        require(writable, "cache_dir", str(self.cache_dir), "must be a writable directory (or creatable)")

    def unfit(self, data: ImageData) -> str | None:
        """Why this FID cannot score ``data``'s images (its contract does not name the feature network), or None."""
        if self.feature in data.fid_features:
            return None
        if self.feature == "fashion":
            return f"data={data.name}: fid=fashion's feature network was trained on Fashion-MNIST alone"
        return f"data={data.name}: its images are not ones fid={self.feature}'s feature network knows"

    def samples(self, model: VAE, n: int, seed: int) -> Iterator[torch.Tensor]:
        """Decoder means of ``n`` draws z ~ N(0, I) seeded by ``seed``, batch by batch on the model's device."""
        generator = torch.Generator().manual_seed(seed)
        for start in range(0, n, self.batch_size):
            yield model.sample(min(self.batch_size, n - start), generator).view(-1, *model.image_shape)

    def reconstructions(self, model: VAE, images: torch.Tensor) -> Iterator[torch.Tensor]:
        """Decoder means at z = μ of ``images`` [N, C, H, W], batch by batch."""
        for batch in images.split(self.batch_size):
            yield model.reconstruct(batch.flatten(1)).view_as(batch)

    @torch.inference_mode()
    def scores(self, model: VAE, images: torch.Tensor, recon: bool = True) -> dict[str, float]:
        """Against the first ``num_images`` of ``images`` (flattened, in [0, 1]; all if null) and as many
        generated images: `fid` and `fid_std`, the mean and sd over the sample seeds of prior samples' FID, and,
        with ``recon`` (and the scorer's ``recon``), `fid_recon` of their reconstructions."""
        self.metric.to(model.device)
        real = images[: self.num_images].to(model.device).view(-1, *model.image_shape)
        set_real(self.metric, real, self.cache_dir, self.batch_size)
        fids = torch.tensor([fid_against_real(self.metric, self.samples(model, len(real), s))
                             for s in self.sample_seeds])  # fmt: skip
        result = {"fid": float(fids.mean())}
        if len(fids) > 1:
            result["fid_std"] = float(fids.std())
        if self.recon and recon:
            result["fid_recon"] = fid_against_real(self.metric, self.reconstructions(model, real))
        return result

    def evaluate(self, model: VAE, data: ImageData, limit: int | None, label: str) -> Evaluation:
        """The scores against the test split (its first ``num_images``: FID is never limited to ``limit``)."""
        return Evaluation(self.scores(model, data.images("test")[0]))
