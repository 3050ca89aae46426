"""recon + γ·|KL − C| with a rising capacity C (Burgess et al. 2018), `objective=capacity`; with γ = 1,000 and
100,000 steps it is disentanglement_lib's AnnealedVAE."""

from __future__ import annotations

import torch

from betavae.base.config import is_int, require, require_positive, require_weight
from betavae.model.objectives.base import Objective, Parts, Progress


class CapacityObjective(Objective):
    """recon + γ·|KL − C| (Burgess et al. 2018, "Understanding disentangling in β-VAE"), the capacity C raised
    linearly from 0 to ``c_max`` nats over ``c_steps`` optimizer steps: the code may carry C nats, no more."""

    name = "capacity"

    def __init__(self, gamma: float = 100.0, c_max: float = 25.0, c_steps: int = 10_000) -> None:
        require_positive("gamma", gamma)
        require_weight("c_max", c_max)
        require(is_int(c_steps, 1), "c_steps", c_steps, "must be an integer >= 1")
        self.gamma, self.c_max, self.c_steps = float(gamma), float(c_max), c_steps

    def capacity(self, at: Progress | None) -> float:
        """C = c_max·min(1, step / c_steps); c_max at the end (``at`` None)."""
        return self.c_max if at is None else self.c_max * min(1.0, at.step / self.c_steps)

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        return recon + self.gamma * (kl - self.capacity(at)).abs()

    def schedule(self, at: Progress) -> dict[str, float]:
        return {"capacity": self.capacity(at)}

    @property
    def label(self) -> str:
        return f"C = {self.c_max:g}, γ = {self.gamma:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"gamma": self.gamma, "c_max": self.c_max}
