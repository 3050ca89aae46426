"""The MLP variational autoencoder: a Gaussian encoder, a decoder of logits read by a pixel likelihood, and what
one does with them."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import NamedTuple

import torch
from torch import nn

from betavae.config import is_int, require
from betavae.likelihood import Likelihood, by_name


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


class MLPVAE(nn.Module):
    """Encoder input→hidden→(μ, log σ²) and decoder latent→reversed hidden→logits, as in the reference study;
    ``likelihood`` (an object or its name) turns logits into log p(x|z) and into images."""

    def __init__(
        self,
        input_dim: int = 784,
        hidden_dims: Sequence[int] = (400, 400),
        latent_dim: int = 20,
        likelihood: Likelihood | str = "bernoulli",
    ) -> None:
        super().__init__()
        require(is_int(input_dim, 1), "input_dim", input_dim, "must be an integer >= 1")
        require(
            isinstance(hidden_dims, Sequence) and len(hidden_dims) > 0 and all(is_int(h, 1) for h in hidden_dims),
            "hidden_dims",
            hidden_dims,
            "must be a non-empty list of positive integers",
        )
        require(is_int(latent_dim, 1), "latent_dim", latent_dim, "must be an integer >= 1")
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.likelihood = by_name(likelihood) if isinstance(likelihood, str) else likelihood
        # Plain values: what a checkpoint stores to rebuild this network (see BetaVAEModule.load).
        self.architecture = {
            "input_dim": input_dim,
            "hidden_dims": [int(h) for h in hidden_dims],
            "latent_dim": latent_dim,
            "likelihood": self.likelihood.name,
        }
        self.encoder = mlp([input_dim, *hidden_dims, 2 * latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden_dims), input_dim])

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> Posterior:
        """Posterior parameters (μ, log σ²) for flattened images ``x`` in [0, 1]."""
        return Posterior(*self.encoder(x).chunk(2, dim=-1))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's logits of the pixels, read by ``self.likelihood``; `decode_mean` gives images."""
        return self.decoder(z)

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
        return self.decode_mean(self.encode(x).mu)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Decoder means of ``n`` codes z ~ N(0, temperature² I), drawn on the CPU from ``generator`` so a seed
        gives the same codes on every device."""
        z = temperature * torch.randn(n, self.latent_dim, generator=generator)
        return self.decode_mean(z.to(self.device))
