"""β-TCVAE (Chen et al. 2018), `objective=tcvae`: the KL split into index-code MI, total correlation and
dimension-wise KL, estimated on minibatches by stratified sampling."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from betavae.base.config import is_int, require, require_weight
from betavae.base.errors import ConfigError
from betavae.model.objectives.base import Objective, Parts, Progress, log_normal


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


class TCObjective(Objective):
    """β-TCVAE (Chen et al. 2018): recon + α·MI + β·TC + γ·dimension-wise KL, the three estimated on minibatches
    of ``batch_size`` images (the training batch; null: each batch as it comes) by stratified sampling over the
    ``dataset_size`` training images (null: the training split's size, filled in when fitting starts). With
    α = β = γ = 1 the parts sum to a one-sample estimate of the KL, so the objective is the β = 1 VAE's in
    expectation. The estimate needs two images a batch or more (with one, MI and TC are 0 whatever the code)
    and a data set at least as large as the batch it stands for."""

    name = "tcvae"
    terms = KLParts._fields

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
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        if parts is None:
            raise ValueError("the β-TCVAE objective needs the KL's parts (Objective.parts)")
        mi, tc, dimwise_kl = parts
        return recon + self.alpha * mi + self.beta * tc + self.gamma * dimwise_kl

    @property
    def label(self) -> str:
        return f"β-TCVAE, β = {self.beta:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"beta": self.beta}
