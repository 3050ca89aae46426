"""The training objectives in nats per image (`objective=beta|capacity|tcvae`), over the KL to the N(0, I) prior,
and the split of that KL into index-code MI, total correlation and dimension-wise KL (Chen et al. 2018)."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from betavae.base.config import is_int, is_number, require, require_positive, require_weight
from betavae.base.errors import ConfigError


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


class KLParts(NamedTuple):
    """Per sample z ~ q(z|x): log q(z|x) − log q(z) (index-code MI), log q(z) − Σ_j log q(z_j) (total
    correlation) and Σ_j log q(z_j) − log p(z_j) (dimension-wise KL). Their means estimate the three terms, and
    they sum to log q(z|x) − log p(z), whose mean is the KL, whatever q(z) is estimated with."""

    mi: torch.Tensor
    tc: torch.Tensor
    dimwise_kl: torch.Tensor


def kl_parts(
    z: torch.Tensor, own: tuple[torch.Tensor, torch.Tensor], mu: torch.Tensor, logvar: torch.Tensor, log_w: torch.Tensor
) -> KLParts:
    """The KL parts of samples z [c, D], each drawn from its own posterior ``own`` (μ, log σ² [c, D]), with the
    aggregate posterior q(z) = Σ_i w_i q(z|x_i) over the components (μ, log σ² [n, D]) with log-weights
    ``log_w`` ([c, n] or [n]): exactly (1/n each, all images) or estimated (a minibatch)."""
    log_qzx = log_normal(z, *own).sum(-1)
    per_dim = log_normal(z[:, None], mu, logvar)  # [c, n, D]
    log_qz = (per_dim.sum(-1) + log_w).logsumexp(-1)
    log_qzj = (per_dim + log_w[..., None]).logsumexp(-2).sum(-1)  # Σ_j log q(z_j)
    log_pz = log_normal(z, z.new_zeros(()), z.new_zeros(())).sum(-1)
    return KLParts(log_qzx - log_qz, log_qz - log_qzj, log_qzj - log_pz)


def stratified_log_weights(batch: int, dataset_size: int) -> torch.Tensor:
    """Log-weights [M, M] of minibatch stratified sampling (Chen et al. 2018, appendix C.2): sample i's own
    posterior counts 1/N, the other M − 1 stand for the N − 1 other images, (N − 1)/(N(M − 1)) each, so the
    estimate of q(z_i) is unbiased for every batch size; with M = N it is the exact mixture."""
    if batch == 1:  # nothing stands for the other images: the only estimate is the sample's own posterior
        return torch.zeros(1, 1)
    w = torch.full((batch, batch), math.log((dataset_size - 1) / (dataset_size * (batch - 1))))
    return w.fill_diagonal_(-math.log(dataset_size))


class Objective:
    """recon and KL (batch means) → the loss to minimise. ``at`` is the training progress; None means the end
    of any schedule, the objective the run aims at, which is what validation and test report. An objective
    that weighs the KL's parts gets their batch means (`parts`) as ``parts``."""

    name = "objective"
    weighs_parts = False  # True: `parts` gives the KL's parts, which the objective weighs
    batch_size: int | None = None  # validation and test estimate the parts on chunks of this many images, in order

    @property
    def needs_dataset_size(self) -> bool:
        """Whether the training split's size is still to be given (`set_dataset_size`) before fitting."""
        return False

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: KLParts | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def parts(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> KLParts | None:
        """Batch means of the KL's parts, for an objective that weighs them (None: it does not)."""
        return None

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
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: KLParts | None = None
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
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: KLParts | None = None
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


class TCObjective(Objective):
    """β-TCVAE (Chen et al. 2018): recon + α·MI + β·TC + γ·dimension-wise KL, the three estimated on minibatches
    of ``batch_size`` images (the training batch; null: each batch as it comes) by stratified sampling over the
    ``dataset_size`` training images (null: the training split's size, filled in when fitting starts). With
    α = β = γ = 1 the parts sum to a one-sample estimate of the KL, so the objective is the β = 1 VAE's in
    expectation. The estimate needs two images a batch or more (with one, MI and TC are 0 whatever the code)
    and a data set at least as large as the batch it stands for."""

    name = "tcvae"
    weighs_parts = True

    def __init__(
        self,
        beta: float = 1.0,
        alpha: float = 1.0,
        gamma: float = 1.0,
        dataset_size: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        for key, value in (("beta", beta), ("alpha", alpha), ("gamma", gamma)):
            require_weight(key, value)
        require(batch_size is None or is_int(batch_size, 2), "batch_size", batch_size,
                "must be an integer >= 2 for objective=tcvae: with one image a batch its MI and TC estimates are "
                "0 whatever the code")  # fmt: skip
        self.beta, self.alpha, self.gamma, self.batch_size = float(beta), float(alpha), float(gamma), batch_size
        self.dataset_size = None
        self.set_dataset_size(dataset_size)

    def set_dataset_size(self, size: int | None, key: str = "dataset_size") -> None:
        """Set N, the training images the estimator's minibatches stand for: at least one batch of them."""
        least = self.batch_size or 2
        require(size is None or (is_int(size, 2) and size >= least), key, size,
                f"must be an integer >= {least}, the training batch: the estimator takes a batch for a sample "
                "of the data set")  # fmt: skip
        self.dataset_size = size

    @property
    def needs_dataset_size(self) -> bool:
        return self.dataset_size is None

    def parts(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> KLParts:
        if self.dataset_size is None:
            raise ConfigError("objective.dataset_size is not set: give it, or fit the module", "objective")
        log_w = stratified_log_weights(len(z), self.dataset_size).to(z)
        return KLParts(*(part.mean() for part in kl_parts(z, (mu, logvar), mu, logvar, log_w)))

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: KLParts | None = None
    ) -> torch.Tensor:
        if parts is None:
            raise ValueError("the β-TCVAE objective needs the KL's parts (Objective.parts)")
        return recon + self.alpha * parts.mi + self.beta * parts.tc + self.gamma * parts.dimwise_kl

    @property
    def label(self) -> str:
        return f"β-TCVAE, β = {self.beta:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"beta": self.beta}


OBJECTIVES = {cls.name: cls for cls in (BetaObjective, CapacityObjective, TCObjective)}


def objective_from(hparams: dict[str, Any]) -> Objective:
    """The objective a checkpoint's `objective` hyperparameters describe."""
    values = dict(hparams)
    name = values.pop("name", None)
    if name not in OBJECTIVES:
        raise ConfigError(f"objective={name!r}: must be one of {', '.join(OBJECTIVES)}", "objective")
    return OBJECTIVES[name](**values)
