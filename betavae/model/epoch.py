"""Each epoch's exact means: every batch's detached term means (loss, recon, KL[, the objective's own terms]) and
image count, kept per stage with no host sync per step and summed when the epoch ends; for an objective that
estimates its terms on chunks of its own batch size (β-TCVAE, DIP-VAE), validation's and test's terms on such
chunks, in the order the images come, so they do not depend on data.eval_batch_size. And the divergence check on
them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from betavae.base.errors import Diverged
from betavae.model.objectives import Parts

PartsOf = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Parts]  # the objective's, of (z, μ, log σ²)


class EpochTerms:
    """The kept terms of the epoch so far, by stage."""

    def __init__(self) -> None:
        self.batches: dict[str, list[tuple[torch.Tensor, int]]] = {}
        self.chunks: dict[str, list[tuple[torch.Tensor, int]]] = {}
        self.carry: dict[str, tuple[torch.Tensor, ...]] = {}
        self.checked = 0  # training batches of this epoch already checked for a non-finite loss

    def add(self, stage: str, terms: torch.Tensor, n: int) -> None:
        """Keep one batch's term means (detached) and its image count."""
        self.batches.setdefault(stage, []).append((terms.detach(), n))

    def add_samples(self, stage: str, size: int, parts: PartsOf, *samples: torch.Tensor) -> None:
        """Estimate the objective's terms of (z, μ, log σ²) on chunks of ``size``, carrying the rest over to the next
        batch (`totals` takes it at the epoch's end)."""
        if stage in self.carry:
            samples = tuple(torch.cat([old, new]) for old, new in zip(self.carry.pop(stage), samples, strict=True))
        full = len(samples[0]) - len(samples[0]) % size
        for start in range(0, full, size):
            self._add_chunk(stage, parts, *(t[start : start + size] for t in samples))
        if full < len(samples[0]):
            self.carry[stage] = tuple(t[full:].detach() for t in samples)

    def _add_chunk(self, stage: str, parts: PartsOf, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        """Keep one chunk's detached term means and its size."""
        self.chunks.setdefault(stage, []).append((torch.stack(list(parts(z, mu, logvar))).detach(), len(z)))

    def take_chunks(self, stage: str, parts: PartsOf) -> list[tuple[torch.Tensor, int]]:
        """The stage's chunks of term means and sizes, taken: the last (smaller) one made of what was carried."""
        if stage in self.carry:
            self._add_chunk(stage, parts, *self.carry.pop(stage))
        return self.chunks.pop(stage, [])

    def totals(self, stage: str, width: int, parts: PartsOf, device: torch.device) -> torch.Tensor:
        """The stage's epoch, taken: the image-weighted sums of its ``width`` terms (the objective's from the chunks,
        where there are any) and, last, its image count."""
        batches, chunks = self.batches.pop(stage, []), self.take_chunks(stage, parts)
        totals = torch.zeros(width + 1, device=device)
        for rows, columns in ((batches, slice(0, width)), (chunks, slice(3, width))):
            if rows:
                means = torch.stack([terms for terms, _ in rows])  # [rows, columns]
                counts = means.new_tensor([n for _, n in rows])
                totals[columns] += counts @ means
        totals[width] = sum(n for _, n in batches)
        return totals

    def unchecked(self) -> tuple[torch.Tensor, int] | None:
        """The training batches since the last check: [index of the first non-finite loss, or their count; its
        recon; its KL; the last loss], and their count; None if there are none."""
        batches = self.batches.get("train", [])
        recent = batches[self.checked :]
        self.checked = len(batches)
        if not recent:
            return None
        terms = torch.stack([batch[:3] for batch, _ in recent])  # [batches, (loss, recon, kl)]
        bad = ~terms[:, 0].isfinite()
        first = bad.int().argmax()  # the first non-finite batch (0 when there is none)
        index = torch.where(bad[first], first, len(recent)).view(1).to(terms.dtype)
        return torch.cat([index, terms[first, 1:], terms[-1, :1]]), len(recent)


def check_finite(what: str, where: str, recon: torch.Tensor, kl: torch.Tensor) -> None:
    """Stop at a non-finite loss, naming where and which term: training on NaN only wastes the job, and the
    checkpoint of the last finished epoch stays the last finite one."""
    terms = (("recon", recon), ("KL", kl))
    bad = [f"{name} = {float(value)}" for name, value in terms if not torch.isfinite(value)]
    if bad:
        raise Diverged(f"diverged: non-finite {what} at {where} ({', '.join(bad)}); try a lower lr")
