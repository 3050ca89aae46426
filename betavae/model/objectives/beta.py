"""recon + β·KL (Higgins et al. 2017), `objective=beta`."""

from __future__ import annotations

import torch

from betavae.base.config import is_number, require, require_weight
from betavae.model.objectives.base import Objective, Parts, Progress


class BetaObjective(Objective):
    """recon + β·KL (Higgins et al. 2017). With ``warmup_epochs`` > 0 the KL weight rises linearly from 0 to β
    over that many epochs (step by step), so the decoder learns before the KL closes latent dimensions."""

    name = "beta"

    def __init__(self, beta: float = 1.0, warmup_epochs: float = 0.0) -> None:
        require_weight("beta", beta)
        require(is_number(warmup_epochs) and warmup_epochs >= 0, "warmup_epochs", warmup_epochs, "must be >= 0")
        self.beta, self.warmup_epochs = float(beta), float(warmup_epochs)

    def kl_weight(self, at: Progress | None) -> float:
        """β·min(1, epochs done / warmup_epochs); β itself without warm-up or at the end (``at`` None)."""
        if at is None or self.warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, at.epoch / self.warmup_epochs)

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        return recon + self.kl_weight(at) * kl

    def schedule(self, at: Progress) -> dict[str, float]:
        return {"kl_weight": self.kl_weight(at)} if self.warmup_epochs else {}

    @property
    def label(self) -> str:
        return f"β = {self.beta:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"beta": self.beta}
