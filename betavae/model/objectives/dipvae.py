"""DIP-VAE (Kumar et al. 2018), `objective=dipvae`, as disentanglement_lib trains it: the VAE's loss plus a penalty
pulling a covariance of the codes towards the identity, its off-diagonal and diagonal entries weighted apart."""

from __future__ import annotations

import torch

from betavae.base.config import is_int, require, require_weight
from betavae.model.objectives.base import Objective, Parts, Progress

STUDY_FACTOR = {"i": 10.0, "ii": 1.0}  # λ_d / λ_od in the reference study (unsupervised_study_v1), by type


def covariance(mu: torch.Tensor) -> torch.Tensor:
    """Cov[μ(x)] over the batch, E[μμᵀ] − E[μ]E[μ]ᵀ (dividing by the batch size, as disentanglement_lib does)."""
    centred = mu - mu.mean(0)
    return centred.T @ centred / len(mu)


def dip_covariance(type: str, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """What DIP-VAE regularises: Cov[μ(x)] (type i), or the aggregate posterior's covariance Cov[μ(x)] +
    E[diag σ²(x)] (type ii)."""
    cov = covariance(mu)
    return cov if type == "i" else cov + torch.diag(logvar.exp().mean(0))


def off_and_on_diagonal(cov: torch.Tensor) -> Parts:
    """Σ_{i≠j} C_ij² and Σ_i (C_ii − 1)²: how far C is from the identity, off and on the diagonal."""
    diagonal = cov.diagonal()
    return (cov.square().sum() - diagonal.square().sum(), (diagonal - 1).square().sum())


class DIPObjective(Objective):
    """recon + KL + λ_od·Σ_{i≠j} C_ij² + λ_d·Σ_i (C_ii − 1)², C the covariance over the batch of μ(x) (DIP-VAE-I,
    Kumar et al. 2018, eq. 6) or of μ(x) plus E[diag σ²(x)] (DIP-VAE-II, eq. 7). λ_d is given directly or, as in
    disentanglement_lib, as ``lambda_d_factor``·λ_od; with neither, the reference study's factor (10 for type i, 1
    for type ii).
    Validation and test estimate C on chunks of ``batch_size`` images (the training batch), in order."""

    name = "dipvae"
    terms = ("dip_off_diagonal", "dip_diagonal")

    def __init__(
        self,
        type: str = "i",
        lambda_od: float = 1.0,
        lambda_d: float | None = None,
        lambda_d_factor: float | None = None,
        batch_size: int | None = None,
    ) -> None:
        require(type in STUDY_FACTOR, "type", type, "must be i or ii")
        require_weight("lambda_od", lambda_od)
        require(lambda_d is None or lambda_d_factor is None, "lambda_d", lambda_d,
                "give lambda_d or lambda_d_factor, not both")  # fmt: skip
        if lambda_d is None:
            lambda_d_factor = STUDY_FACTOR[type] if lambda_d_factor is None else lambda_d_factor
            require_weight("lambda_d_factor", lambda_d_factor)
            lambda_d = lambda_d_factor * lambda_od
        require_weight("lambda_d", lambda_d)
        require(batch_size is None or is_int(batch_size, 2), "batch_size", batch_size,
                "must be an integer >= 2 for objective=dipvae: a covariance needs two codes")  # fmt: skip
        self.type, self.lambda_od, self.lambda_d, self.batch_size = type, float(lambda_od), float(lambda_d), batch_size

    def parts(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Parts:
        return off_and_on_diagonal(dip_covariance(self.type, mu, logvar))

    def __call__(
        self, recon: torch.Tensor, kl: torch.Tensor, at: Progress | None = None, parts: Parts | None = None
    ) -> torch.Tensor:
        if parts is None:
            raise ValueError("the DIP-VAE objective needs its covariance penalties (Objective.parts)")
        off_diagonal, diagonal = parts
        return recon + kl + self.lambda_od * off_diagonal + self.lambda_d * diagonal

    @property
    def label(self) -> str:
        return f"DIP-VAE-{self.type.upper()}, λ_od = {self.lambda_od:g}"

    @property
    def weight(self) -> dict[str, float]:
        return {"lambda_od": self.lambda_od, "lambda_d": self.lambda_d}
