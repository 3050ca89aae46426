"""FactorVAE (Kim & Mnih 2018), `objective=factorvae`, as disentanglement_lib trains it: the VAE's loss plus γ times
a discriminator's density-ratio estimate of the codes' total correlation, the discriminator trained in the same
step to tell the batch's codes from the same codes with each dimension permuted across the batch."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from betavae.base.config import is_int, is_number, require, require_positive, require_weight
from betavae.model.objectives.base import Objective, Parts, Progress


def discriminator(latent_dim: int, hidden: int = 1000, layers: int = 6) -> nn.Sequential:
    """Kim & Mnih's discriminator: ``layers`` dense layers of ``hidden`` units with leaky ReLU (slope 0.2, as
    TensorFlow's), then two logits, "real" (codes of q(z)) and "permuted" (of the product of its marginals)."""
    sizes = [latent_dim, *[hidden] * layers]
    blocks = [m for n_in, n_out in pairwise(sizes) for m in (nn.Linear(n_in, n_out), nn.LeakyReLU(0.2))]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], 2))


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each dimension of the codes [B, D] permuted across the batch on its own: samples of Π_j q(z_j)."""
    order = torch.rand(z.shape, generator=generator, device=z.device).argsort(0)
    return z.gather(0, order)


def roll_dims(z: torch.Tensor) -> torch.Tensor:
    """Dimension j rolled by j places across the batch: a fixed permutation of each dimension (no random draw),
    what validation and test score the discriminator on."""
    return torch.stack([column.roll(j) for j, column in enumerate(z.unbind(1))], 1)


def density_ratio_tc(logits: torch.Tensor) -> torch.Tensor:
    """The total correlation's estimate per code: logit("real") − logit("permuted") = log D/(1 − D)."""
    return logits[:, 0] - logits[:, 1]


def discriminator_loss(real_logits: torch.Tensor, permuted_logits: torch.Tensor) -> torch.Tensor:
    """The discriminator's cross-entropy, half on the real codes (class 0) and half on the permuted (class 1):
    −½·E[log D(z)] − ½·E[log(1 − D(z̃))]."""
    return -0.5 * (real_logits.log_softmax(1)[:, 0].mean() + permuted_logits.log_softmax(1)[:, 1].mean())


class FactorVAEObjective(Objective, nn.Module):
    """recon + KL + γ·E[log D(z)/(1 − D(z))] over z ~ q(z|x), D the discriminator (Kim & Mnih 2018, eq. 2). Each
    training step computes the model's gradient and the discriminator's at the same parameters, as
    disentanglement_lib does: the model's loss reaches the codes through the discriminator with its weights held,
    the discriminator's loss reaches its weights with the codes held. The discriminator has its own Adam
    (``lr``, ``betas``), is part of the checkpoint, and not of an exported model."""

    name = "factorvae"
    terms = ("tc_discriminator", "discriminator_loss")

    def __init__(
        self,
        gamma: float = 10.0,
        latent_dim: int = 10,
        hidden: int = 1000,
        layers: int = 6,
        lr: float = 1e-4,
        betas: tuple[float, float] | list[float] = (0.5, 0.9),
    ) -> None:
        nn.Module.__init__(self)
        require_weight("gamma", gamma)
        require(is_int(latent_dim, 1), "latent_dim", latent_dim, "must be an integer >= 1")
        require(is_int(hidden, 1), "hidden", hidden, "must be an integer >= 1")
        require(is_int(layers, 1), "layers", layers, "must be an integer >= 1")
        require_positive("lr", lr)
        ok = len(betas) == 2 and all(is_number(b) and 0 <= b < 1 for b in betas)
        require(ok, "betas", list(betas), "must be two numbers in [0, 1), Adam's β₁ and β₂")
        self.gamma, self.lr, self.betas = float(gamma), float(lr), (float(betas[0]), float(betas[1]))
        self.latent_dim, self.hidden, self.layers = latent_dim, hidden, layers
        self.discriminator = discriminator(latent_dim, hidden, layers)

    def parts(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Parts:
        held = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        tc = density_ratio_tc(functional_call(self.discriminator, held, (z,))).mean()
        codes = z.detach()
        permuted = permute_dims(codes) if self.training else roll_dims(codes)
        return tc, discriminator_loss(self.discriminator(codes), self.discriminator(permuted))

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        if parts is None:
            raise ValueError("the FactorVAE objective needs the discriminator's estimate (Objective.parts)")
        return recon + kl + self.gamma * parts[0]

    def side_loss(self, parts: Parts | None) -> torch.Tensor | float:
        return 0.0 if parts is None else parts[1]

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas)]

    def hparams(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma, "latent_dim": self.latent_dim, "hidden": self.hidden,
                "layers": self.layers, "lr": self.lr, "betas": list(self.betas)}  # fmt: skip

    @property
    def label(self) -> str:
        return f"FactorVAE, γ = {self.gamma:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"gamma": self.gamma}
