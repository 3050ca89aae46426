"""The training objectives in nats per image (`objective=beta|capacity`), over the KL to the N(0, I) prior."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

from betavae.config import ConfigError, is_int, is_number, require


class LossTerms(NamedTuple):
    """Batch means, in nats per image, of the objective and its two parts."""

    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


class Progress(NamedTuple):
    """Where training is, for scheduled objectives: optimizer steps taken and epochs done (fractional)."""

    step: int
    epoch: float


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Analytic KL(N(μ, σ²) ‖ N(0, 1)) per image and latent dimension, shape [B, D]."""
    return 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar)


class Objective:
    """recon and KL (batch means) → the loss to minimise. ``at`` is the training progress; None means the end
    of any schedule, the objective the run aims at, which is what validation and test report."""

    name = "objective"

    def __call__(self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None) -> torch.Tensor:
        raise NotImplementedError

    def schedule(self, at: Progress) -> dict[str, float]:
        """The scheduled values at ``at``, logged as `train/<name>` each epoch (none for a fixed objective)."""
        return {}

    def hparams(self) -> dict[str, Any]:
        """Plain values that rebuild this objective (`objective_from`)."""
        return {"name": self.name, **vars(self)}

    @property
    def label(self) -> str:
        """A short title for figures, e.g. 'β = 0.5'."""
        raise NotImplementedError


class BetaObjective(Objective):
    """recon + β·KL (Higgins et al. 2017). With ``warmup_epochs`` > 0 the KL weight rises linearly from 0 to β
    over that many epochs (step by step), so the decoder learns before the KL closes latent dimensions."""

    name = "beta"

    def __init__(self, beta: float = 1.0, warmup_epochs: float = 0.0) -> None:
        require(is_number(beta) and beta >= 0, "beta", beta, "must be a finite number >= 0")
        require(is_number(warmup_epochs) and warmup_epochs >= 0, "warmup_epochs", warmup_epochs, "must be >= 0")
        self.beta, self.warmup_epochs = float(beta), float(warmup_epochs)

    def kl_weight(self, at: Progress | None) -> float:
        """β·min(1, epochs done / warmup_epochs); β itself without warm-up or at the end (``at`` None)."""
        if at is None or self.warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, at.epoch / self.warmup_epochs)

    def __call__(self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None) -> torch.Tensor:
        return recon + self.kl_weight(at) * kl

    def schedule(self, at: Progress) -> dict[str, float]:
        return {"kl_weight": self.kl_weight(at)} if self.warmup_epochs else {}

    @property
    def label(self) -> str:
        return f"β = {self.beta:g}"


class CapacityObjective(Objective):
    """recon + γ·|KL − C| (Burgess et al. 2018, "Understanding disentangling in β-VAE"), the capacity C raised
    linearly from 0 to ``c_max`` nats over ``c_steps`` optimizer steps: the code may carry C nats, no more."""

    name = "capacity"

    def __init__(self, gamma: float = 100.0, c_max: float = 25.0, c_steps: int = 10_000) -> None:
        require(is_number(gamma) and gamma > 0, "gamma", gamma, "must be a finite number > 0")
        require(is_number(c_max) and c_max >= 0, "c_max", c_max, "must be a finite number >= 0")
        require(is_int(c_steps, 1), "c_steps", c_steps, "must be an integer >= 1")
        self.gamma, self.c_max, self.c_steps = float(gamma), float(c_max), c_steps

    def capacity(self, at: Progress | None) -> float:
        """C = c_max·min(1, step / c_steps); c_max at the end (``at`` None)."""
        return self.c_max if at is None else self.c_max * min(1.0, at.step / self.c_steps)

    def __call__(self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None) -> torch.Tensor:
        return recon + self.gamma * (kl - self.capacity(at)).abs()

    def schedule(self, at: Progress) -> dict[str, float]:
        return {"capacity": self.capacity(at)}

    @property
    def label(self) -> str:
        return f"C = {self.c_max:g}, γ = {self.gamma:g}"


OBJECTIVES = {cls.name: cls for cls in (BetaObjective, CapacityObjective)}


def objective_from(hparams: dict[str, Any]) -> Objective:
    """The objective a checkpoint's `objective` hyperparameters describe."""
    values = dict(hparams)
    name = values.pop("name", None)
    if name not in OBJECTIVES:
        raise ConfigError(f"objective={name!r}: must be one of {', '.join(OBJECTIVES)}", "objective")
    return OBJECTIVES[name](**values)
