"""The variational autoencoders (`model=mlp|conv|burgess|locatello`): a Gaussian encoder, a decoder of logits read
by a pixel likelihood, and what one does with them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import NamedTuple

import torch
from torch import nn

from betavae.base.config import is_int, require
from betavae.base.errors import ConfigError
from betavae.data.contract import ImageShape
from betavae.model.likelihoods import Likelihood, by_name

# Rows per forward pass without gradients on a CPU: a convolutional layer's activations for more images outgrow its
# caches, and Locatello et al.'s encoder runs 2.5x, the FID features 2x faster than at 2,000 (benchmarks/chunks.py).
CPU_CHUNK = 128


def in_chunks(x: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, ...]:
    """``x`` in the pieces a pass without gradients on ``device`` takes: CPU_CHUNK rows on a CPU, whole elsewhere."""
    return x.split(CPU_CHUNK) if device.type == "cpu" else (x,)


class Posterior(NamedTuple):
    """μ and log σ² of q(z|x), each [..., D]."""

    mu: torch.Tensor
    logvar: torch.Tensor


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """What every network shares: ``encoder`` maps flattened images [B, P] (channel first, P = C·H·W) to
    (μ, log σ²) [B, 2D], ``decoder`` maps codes [B, D] to logits [B, P]; ``likelihood`` (an object or its name)
    turns logits into log p(x|z) and into images. ``architecture`` holds the plain values that rebuild the
    network (`build`)."""

    name = "vae"
    encoder: nn.Module
    decoder: nn.Module

    def __init__(
        self,
        latent_dim: int,
        likelihood: Likelihood | str,
        image_size: int,
        image_channels: int,
        **architecture: object,
    ) -> None:
        super().__init__()
        require(is_int(latent_dim, 1), "latent_dim", latent_dim, "must be an integer >= 1")
        require(is_int(image_size, 1), "image_size", image_size, "must be an integer >= 1")
        require(is_int(image_channels, 1), "image_channels", image_channels, "must be an integer >= 1")
        self.latent_dim = latent_dim
        self.image_shape = ImageShape(image_channels, image_size, image_size)
        self.likelihood = by_name(likelihood) if isinstance(likelihood, str) else likelihood
        # Plain values: what a checkpoint stores to rebuild this network (see checkpoints.load_module).
        self.architecture = {"name": self.name, "image_size": image_size, "image_channels": image_channels,
                             **architecture, "latent_dim": latent_dim, "likelihood": self.likelihood.name}  # fmt: skip

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> Posterior:
        """Posterior parameters (μ, log σ²) for flattened images ``x`` in [0, 1]."""
        return Posterior(*self.encoder(x).chunk(2, dim=-1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's logits of the pixels for codes [..., D], read by ``self.likelihood``; `decode_mean` gives
        images."""
        return self.decoder(z.flatten(0, -2)).unflatten(0, z.shape[:-1])

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel means E[x|z] in [0, 1] under the likelihood: what images of the model show."""
        return self.likelihood.mean(self.decode(z))

    def nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x|z) per image under the likelihood, for logits [..., B, P] of images x [B, P]."""
        return self.likelihood.nll(logits, x)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """z = μ + σ·ε with ε ~ N(0, I) (or the given ε, which may carry leading sample dimensions), so
        gradients flow through μ and σ."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + eps * (0.5 * logvar).exp()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, sample one z per image and decode: (logits, μ, log σ²)."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder means at z = μ(x): the model's reconstruction of each image."""
        return torch.cat([self.decode_mean(self.encode(part).mu) for part in in_chunks(x, self.device)])

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Decoder means of ``n`` codes z ~ N(0, temperature² I), drawn on the CPU from ``generator`` so a seed
        gives the same codes on every device."""
        z = temperature * torch.randn(n, self.latent_dim, generator=generator)
        return torch.cat([self.decode_mean(part) for part in in_chunks(z.to(self.device), self.device)])


@torch.no_grad()
def encode_all(model: VAE, images: torch.Tensor, batch_size: int = 2000) -> Posterior:
    """The posterior of every image (flattened, in [0, 1]), encoded in batches on the model's device so memory
    stays bounded wherever the images are."""
    parts = [model.encode(part) for batch in images.split(batch_size)
             for part in in_chunks(batch.to(model.device), model.device)]  # fmt: skip
    return Posterior(torch.cat([p.mu for p in parts]), torch.cat([p.logvar for p in parts]))


def check_dims(key: str, dims: object) -> list[int]:
    """A non-empty list of positive layer sizes, as plain ints."""
    ok = isinstance(dims, Sequence) and len(dims) > 0 and all(is_int(h, 1) for h in dims)
    require(ok, key, dims, "must be a non-empty list of positive integers")
    return [int(h) for h in dims]


class MLPVAE(VAE):
    """Encoder pixels→hidden→(μ, log σ²) and decoder latent→reversed hidden→logits, as in the reference study;
    every channel's pixels are inputs alike."""

    name = "mlp"

    def __init__(
        self,
        image_size: int = 28,
        hidden_dims: Sequence[int] = (400, 400),
        latent_dim: int = 20,
        likelihood: Likelihood | str = "bernoulli",
        image_channels: int = 1,
    ) -> None:
        hidden_dims = check_dims("hidden_dims", hidden_dims)
        super().__init__(latent_dim, likelihood, image_size, image_channels, hidden_dims=hidden_dims)
        values = self.image_shape.values
        self.encoder = mlp([values, *hidden_dims, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), values])


def halvings(image_size: int, convolutions: int) -> list[tuple[int, int]]:
    """(padding, size after) of each 4×4 stride-2 convolution: padding 1 halves an even size, 2 an odd one
    (7→4), so each size is the ceiling of half the one before."""
    steps, size = [], image_size
    for _ in range(convolutions):
        padding, size = (1 if size % 2 == 0 else 2), -(-size // 2)
        steps.append((padding, size))
    return steps


class ConvVAE(VAE):
    """The convolutional β-VAE of Burgess et al. 2018, for any image size and number of image channels. Theirs, for
    64×64, has four 4×4 stride-2 convolutions of 32 channels (64→32→16→8→4) and dense layers of 256 and 256
    units. Each convolution here halves the image (rounding up: an odd size is padded by 2), so the default three
    take 28×28 (28→14→7→4) or 32×32 to the 32×4×4 = 512 features their dense layers take;
    ``channels=[32,32,32,32]`` is theirs for 64×64. The decoder mirrors it with transposed convolutions
    (4→7→14→28)."""

    name = "conv"

    def __init__(
        self,
        image_size: int = 28,
        channels: Sequence[int] = (32, 32, 32),
        hidden_dims: Sequence[int] = (256, 256),
        latent_dim: int = 20,
        likelihood: Likelihood | str = "bernoulli",
        image_channels: int = 1,
    ) -> None:
        channels, hidden_dims = check_dims("channels", channels), check_dims("hidden_dims", hidden_dims)
        super().__init__(latent_dim, likelihood, image_size, image_channels, channels=channels, hidden_dims=hidden_dims)
        steps = halvings(image_size, len(channels))
        side = steps[-1][1]
        convs: list[nn.Module] = []
        for n_in, n_out, (pad, _) in zip([image_channels, *channels[:-1]], channels, steps, strict=True):
            convs += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=pad), nn.ReLU()]
        features = channels[-1] * side * side
        self.encoder = nn.Sequential(nn.Unflatten(1, tuple(self.image_shape)), *convs, nn.Flatten(),
                                     mlp([features, *hidden_dims, 2 * latent_dim]))  # fmt: skip
        deconvs: list[nn.Module] = []
        outs = [*reversed(channels[:-1]), image_channels]
        for i, (n_in, n_out, (pad, _)) in enumerate(zip(reversed(channels), outs, reversed(steps), strict=True)):
            deconvs.append(nn.ConvTranspose2d(n_in, n_out, 4, stride=2, padding=pad, output_padding=int(pad == 2)))
            if i < len(channels) - 1:
                deconvs.append(nn.ReLU())
        self.decoder = nn.Sequential(
            mlp([latent_dim, *reversed(hidden_dims), features]), nn.ReLU(), nn.Unflatten(1, (channels[-1], side, side)),
            *deconvs, nn.Flatten()
        )  # fmt: skip


class LocatelloVAE(VAE):
    """The network of Locatello et al. 2019's study, disentanglement_lib's `conv_encoder` and `deconv_decoder`
    (after Higgins et al. 2017's network for 3D chairs): convolutions of 32, 32, 64 and 64 channels with kernels 4,
    4, 2 and 2, each of stride 2 (64→32→16→8→4), one dense layer of 256, then (μ, log σ²); the decoder is dense
    256 → 64·4·4, then transposed 4×4 stride-2 convolutions of 64, 32, 32 and the image's channels. ReLU between
    all. 690,517 parameters for one channel and 10 latents. For images whose side is a multiple of 16 (theirs:
    64)."""

    name = "locatello"

    def __init__(
        self,
        image_size: int = 64,
        latent_dim: int = 10,
        likelihood: Likelihood | str = "bernoulli",
        image_channels: int = 1,
    ) -> None:
        super().__init__(latent_dim, likelihood, image_size, image_channels)
        require(image_size % 16 == 0, "image_size", image_size,
                "must be a multiple of 16 for model=locatello (four halvings; theirs is 64)")  # fmt: skip
        side, c = image_size // 16, image_channels
        self.encoder = nn.Sequential(
            nn.Unflatten(1, tuple(self.image_shape)),
            nn.Conv2d(c, 32, 4, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 2, stride=2), nn.ReLU(), nn.Conv2d(64, 64, 2, stride=2), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * side * side, 256), nn.ReLU(), nn.Linear(256, 2 * latent_dim),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(), nn.Linear(256, 64 * side * side), nn.ReLU(),
            nn.Unflatten(1, (64, side, side)),
            nn.ConvTranspose2d(64, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1), nn.Flatten(),
        )  # fmt: skip


MODELS = {cls.name: cls for cls in (MLPVAE, ConvVAE, LocatelloVAE)}


def named(architecture: dict[str, object]) -> dict[str, object]:
    """A checkpoint's `net` hyperparameters as this version names them: with the network's name (checkpoints
    before 0.3.0 have none: an MLP), its image size (before 0.6.0: an MLP's `input_dim` pixels, or 28) and its
    image channels (before 0.8.0: gray, 1)."""
    values = {"name": MLPVAE.name, "image_channels": 1, **architecture}
    if "image_size" not in values:
        values["image_size"] = math.isqrt(int(values.pop("input_dim", 28 * 28)))
    return values


def build(architecture: dict[str, object]) -> VAE:
    """The network a checkpoint's `net` hyperparameters describe; only this project's classes, by name."""
    values = named(architecture)
    name = values.pop("name")
    if name not in MODELS:
        raise ConfigError(f"model={name!r}: must be one of {', '.join(MODELS)}", "model")
    return MODELS[name](**values)
