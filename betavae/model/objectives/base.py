"""What every objective shares: the loss terms, the training progress a schedule reads, the KL to the N(0, I)
prior, and the `Objective` interface (`objective=beta|capacity|tcvae|factorvae|dipvae`, each a module here)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

Parts = tuple[torch.Tensor, ...]  # batch means of an objective's own terms, in the order of its `terms`


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


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; μ, σ²) per dimension, broadcast over the arguments' shapes."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).square() * (-logvar).exp())


class Objective:
    """recon and KL (batch means) → the loss to minimise. ``at`` is the training progress; None means the end
    of any schedule, the objective the run aims at, which is what validation and test report. An objective
    with terms of its own (`terms`: the KL's parts, a covariance penalty, a discriminator's estimate) gets their
    batch means (`parts`) as ``parts``."""

    name = "objective"
    terms: tuple[str, ...] = ()  # the names of what `parts` gives, logged as `<stage>/<name>_batch`
    batch_size: int | None = None  # validation and test estimate the parts on chunks of this many images, in order

    @property
    def needs_dataset_size(self) -> bool:
        """Whether the training split's size is still to be given (`set_dataset_size`) before fitting."""
        return False

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def parts(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Parts | None:
        """Batch means of the objective's `terms` for codes z drawn from q(z|x) = N(μ, σ²) (None: it has none)."""
        return None

    def side_loss(self, parts: Parts | None) -> torch.Tensor | float:
        """A loss trained in the same step on the objective's own parameters (FactorVAE's discriminator), added
        to the model's for the one backward pass; 0 for an objective without parameters."""
        return 0.0

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimizers of the objective's own parameters, after the model's (none for most)."""
        return []

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

    @property
    def weight(self) -> dict[str, float]:
        """The objective's own weights, by config key under `objective`: what a job's record says it trained."""
        raise NotImplementedError
