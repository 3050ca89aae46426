"""The training objectives in nats per image, over the KL to the N(0, I) prior, one module each: β-VAE
(`beta`), the capacity objective and AnnealedVAE (`capacity`), β-TCVAE (`tcvae`), FactorVAE (`factorvae`) and
DIP-VAE-I and -II (`dipvae`); what they share is `base`'s."""

from __future__ import annotations

from typing import Any

from betavae.base.errors import ConfigError
from betavae.model.objectives.base import LossTerms, Objective, Parts, Progress, gaussian_kl, log_normal
from betavae.model.objectives.beta import BetaObjective
from betavae.model.objectives.capacity import CapacityObjective
from betavae.model.objectives.dipvae import DIPObjective
from betavae.model.objectives.factorvae import FactorVAEObjective
from betavae.model.objectives.tcvae import KLParts, TCObjective, kl_parts, stratified_log_weights

__all__ = ["OBJECTIVES", "BetaObjective", "CapacityObjective", "DIPObjective", "FactorVAEObjective", "KLParts",
           "LossTerms", "Objective", "Parts", "Progress", "TCObjective", "gaussian_kl", "kl_parts", "log_normal",
           "objective_from", "stratified_log_weights"]  # fmt: skip

OBJECTIVES = {
    cls.name: cls for cls in (BetaObjective, CapacityObjective, TCObjective, FactorVAEObjective, DIPObjective)
}


def objective_from(hparams: dict[str, Any]) -> Objective:
    """The objective a checkpoint's `objective` hyperparameters describe."""
    values = dict(hparams)
    name = values.pop("name", None)
    if name not in OBJECTIVES:
        raise ConfigError(f"objective={name!r}: must be one of {', '.join(OBJECTIVES)}", "objective")
    return OBJECTIVES[name](**values)
