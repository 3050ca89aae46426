"""Every figure of a run, as a function of the model and images returning an RGB uint8 array, drawn headless; the
model computes on its own device, wherever the images are, and images are shown in the model's shape (gray or
colour). `draw` draws a figure by name from a model and a data module: what the figure callbacks draw during
training and evaluate draws afterwards, the same way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from betavae.base.plotting import image_grid, new_figure, render
from betavae.data.contract import ImageData
from betavae.data.memory import first_per_class
from betavae.metrics.information import factor_information
from betavae.metrics.latents import active_mask, kl_per_dim
from betavae.model.networks import VAE, Posterior, encode_all

CURVE_PANELS = ("recon", "kl", "loss")


@torch.no_grad()
def reconstructions(model: VAE, images: torch.Tensor, groups: torch.Tensor, per_class: int) -> np.ndarray:
    """The first ``per_class`` images of each group (class, or shape) in the top rows, their reconstructions
    below, one column per group."""
    kinds = torch.unique(groups).tolist()
    x = images[first_per_class(groups, kinds, per_class)].to(model.device)
    x = x.view(len(kinds), per_class, -1).transpose(0, 1).reshape(len(kinds) * per_class, -1)  # rows in group order
    return image_grid(torch.cat([x, model.reconstruct(x)]), nrow=len(kinds), shape=model.image_shape)


def prior_samples(model: VAE, num_samples: int, seed: int) -> np.ndarray:
    """Decoder means of one seeded set of codes z ~ N(0, I), so successive grids show the same codes evolve."""
    samples = model.sample(num_samples, torch.Generator().manual_seed(seed))
    return image_grid(samples, nrow=int(np.ceil(np.sqrt(num_samples))), shape=model.image_shape)


def sample_stats(samples: torch.Tensor) -> dict[str, float]:
    """Mean pixel intensity, mean per-pixel standard deviation across samples ("diversity"), sample count."""
    return {"mean_intensity": float(samples.mean()), "diversity": float(samples.std(0).mean()),
            "num_samples": len(samples)}  # fmt: skip


def frozen_sigma(
    model: VAE,
    label: str,
    sigmas: Sequence[float],
    num_samples: int,
    grid_samples: int,
    seed: int,
) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """The frozen-σ study: samples at temperature σ (z = 0 + σ·ε, the posterior mean frozen at the origin) for
    each σ side by side, and per σ their `sample_stats`."""
    fig = new_figure(3.2 * len(sigmas), 3.6)
    stats = {}
    for ax, sigma in zip(fig.subplots(1, len(sigmas), squeeze=False)[0], sigmas, strict=True):
        samples = model.sample(num_samples, torch.Generator().manual_seed(seed), temperature=sigma)
        stats[f"{sigma:g}"] = sample_stats(samples)
        ax.imshow(image_grid(samples[:grid_samples], nrow=int(np.sqrt(grid_samples)), shape=model.image_shape))
        ax.set_title(f"σ = {sigma:g} · diversity {stats[f'{sigma:g}']['diversity']:.3f}")
        ax.axis("off")
    fig.suptitle(f"{label} · samples of z ~ N(0, σ²I)")
    return render(fig), stats


@torch.no_grad()
def interpolation(
    model: VAE,
    images: torch.Tensor,
    groups: torch.Tensor,
    pairs: Sequence[Sequence[int]],
    steps: int,
) -> np.ndarray:
    """Straight lines in latent space between the posterior means of the first images of two groups (classes,
    or shapes), one row per pair."""
    ends = torch.stack([images[first_per_class(groups, list(pair), 1)] for pair in pairs])  # [P, 2, pixels]
    mu = model.encode(ends.flatten(0, 1).to(model.device)).mu.view(len(pairs), 2, -1)
    t = torch.linspace(0, 1, steps, device=mu.device).view(1, -1, 1)
    path = mu[:, :1] * (1 - t) + mu[:, 1:] * t  # [P, steps, D]
    return image_grid(model.decode_mean(path.flatten(0, 1)), nrow=steps, shape=model.image_shape)


@torch.no_grad()
def latent_traversal(
    model: VAE, ranking_images: torch.Tensor, image: torch.Tensor, num_dims: int, steps: int, span: float,
    factors: tuple[np.ndarray, Sequence[str]] | None = None,
) -> np.ndarray:  # fmt: skip
    """For the ``num_dims`` dimensions with the highest average KL on ``ranking_images``, one row each: that
    dimension swept over [−span, span], the others at the posterior mean of ``image`` [pixels]. Given the ranking
    images' ``factors`` (indices [n, K] and names), each row is labelled with the factor its dimension informs
    most and that mutual information over the factor's entropy."""
    posterior = encode_all(model, ranking_images)
    dims = kl_per_dim(posterior).argsort(descending=True)[:num_dims]
    base = model.encode(image.unsqueeze(0).to(model.device)).mu[0]
    z = base.repeat(len(dims), steps, 1)
    z[torch.arange(len(dims)), :, dims] = torch.linspace(-span, span, steps, device=base.device)
    grid = image_grid(model.decode_mean(z.flatten(0, 1)), nrow=steps, shape=model.image_shape)
    if factors is None:
        return grid
    labels, names = factors
    informs = factor_information(posterior.mu.cpu().double().numpy(), labels)
    rows = [f"z{d} · {names[informs[d].argmax()]} {informs[d].max():.2f}" for d in dims.tolist()]
    return labelled_rows(grid, rows, model.image_shape.height)


def labelled_rows(grid: np.ndarray, labels: Sequence[str], height: int) -> np.ndarray:
    """An image grid with a label left of each row of images (each ``height`` pixels high, 2 px apart)."""
    side = height + 2
    height, width = grid.shape[:2]
    fig = new_figure((width + 180) / 100, max(height, 60) / 100)
    ax = fig.add_subplot()
    ax.imshow(grid, interpolation="nearest")
    ax.set_yticks([2 + i * side + side / 2 - 1 for i in range(len(labels))], labels, fontsize=8)
    ax.set_xticks([])
    return render(fig)


def kl_per_dim_chart(posterior: Posterior, label: str, epoch: int | None = None) -> np.ndarray:
    """Bars of average KL per latent dimension, active units in a darker colour."""
    kl = kl_per_dim(posterior).cpu().numpy()
    active = active_mask(posterior).cpu().numpy()
    fig = new_figure(6.5, 3.5)
    ax = fig.add_subplot()
    ax.bar(np.arange(len(kl)), kl, color=np.where(active, "tab:blue", "lightgray"))
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL (nats / image)")
    ax.set_xticks(np.arange(len(kl)))
    when = "" if epoch is None else f" · epoch {epoch}"
    ax.set_title(f"{label}{when} · {int(active.sum())}/{len(kl)} active units (val)")
    return render(fig)


def training_curves(history: list[dict[str, float]], label: str) -> np.ndarray:
    """Train and val recon, KL and loss per epoch, from per-epoch records {"epoch": e, "train/loss": ...}."""
    fig = new_figure(12, 3.6)
    for ax, name in zip(fig.subplots(1, len(CURVE_PANELS)), CURVE_PANELS, strict=True):
        for stage in ("train", "val"):
            points = [(h["epoch"], h[f"{stage}/{name}"]) for h in history if f"{stage}/{name}" in h]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", ms=3, label=stage)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{name} (nats / image)")
        ax.set_title(name)
        ax.legend()
    fig.suptitle(label)
    return render(fig)


def _latent_traversal_of(model: VAE, data: ImageData, label: str, image_index: int, **settings: Any) -> np.ndarray:
    """`latent_traversal` around test image ``image_index``, dimensions ranked on the validation images, each row
    labelled with the factor it informs most where the data has factors."""
    ranking, labels = data.images("val")
    factors = (labels.cpu().numpy(), [f.name for f in data.factors]) if data.factors else None
    return latent_traversal(model, ranking, data.images("test")[0][image_index], **settings, factors=factors)


Drawn = tuple[np.ndarray, dict[str, Any] | None]  # the image, and the statistics some figures give beside it
FIGURES: dict[str, Callable[..., Any]] = {  # name: what draws it from (model, data, label, **its settings)
    "reconstructions": lambda model, data, label, **s: reconstructions(model, *data.grouped("test"), **s),
    "prior_samples": lambda model, data, label, **s: prior_samples(model, **s),
    "interpolation": lambda model, data, label, **s: interpolation(model, *data.grouped("test"), **s),
    "latent_traversal": _latent_traversal_of,
    "frozen_sigma": lambda model, data, label, **s: frozen_sigma(model, label, **s),
    "kl_per_dim": lambda model, data, label, **s: kl_per_dim_chart(encode_all(model, data.images("val")[0]), label),
}
END_OF_FIT = tuple(FIGURES)  # what fitting ends with, and evaluate draws: every figure of one model


def draw(name: str, model: VAE, data: ImageData, label: str, **settings: Any) -> Drawn:
    """Figure ``name`` of a model on a data module, with the figure's settings (betavae/conf/figures/): its image and,
    for frozen_sigma, the statistics it shows."""
    drawn = FIGURES[name](model, data, label, **settings)
    return drawn if isinstance(drawn, tuple) else (drawn, None)
