"""Image grids of what the model does: reconstructions, prior samples, frozen-σ samples, interpolations,
latent traversals."""

from __future__ import annotations

import json

import lightning.pytorch as pl
import numpy as np
import torch

from betavae.figures import image_grid, new_figure, render
from betavae.latents import encode, kl_per_dim
from betavae.model import MLPVAE
from callbacks.output import (
    decode_mean,
    device_of,
    due,
    figure_dir,
    first_per_class,
    log_scalars,
    publish,
    split_images,
)


class EveryNEpochs(pl.Callback):
    """Base for figures drawn every ``every_n_epochs`` epochs (0: only at the end) and once when fitting ends."""

    name = "figure"

    def __init__(self, every_n_epochs: int = 5) -> None:
        self.every_n_epochs = every_n_epochs

    def figure(self, model: MLPVAE, datamodule: pl.LightningDataModule) -> np.ndarray:
        """The HWC uint8 image to publish, drawn from ``model`` and the data's splits."""
        raise NotImplementedError

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if due(trainer, self.every_n_epochs):
            self._publish(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._publish(trainer, pl_module)

    def _publish(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            with torch.no_grad():
                publish(trainer, self.name, self.figure(pl_module.model, trainer.datamodule))


class Reconstructions(EveryNEpochs):
    """Fixed test images (``per_class`` of each class) in the top rows, their reconstructions (decoder mean
    at z = μ) below."""

    name = "reconstructions"

    def __init__(self, every_n_epochs: int = 5, per_class: int = 2) -> None:
        super().__init__(every_n_epochs)
        self.per_class = per_class

    def figure(self, model: MLPVAE, datamodule: pl.LightningDataModule) -> np.ndarray:
        images, labels = split_images(datamodule, "test", device_of(model))
        x = images[first_per_class(labels, list(range(10)), self.per_class)]
        x = x.view(10, self.per_class, -1).transpose(0, 1).reshape(10 * self.per_class, -1)  # rows by class order
        recon = decode_mean(model, model.encode(x)[0])
        return image_grid(torch.cat([x, recon]), nrow=10)


class PriorSamples(EveryNEpochs):
    """Decoder means of one fixed set of codes z ~ N(0, I), so the grid shows how the same codes evolve."""

    name = "prior_samples"

    def __init__(self, every_n_epochs: int = 5, num_samples: int = 64, seed: int = 0) -> None:
        super().__init__(every_n_epochs)
        self.num_samples, self.seed = num_samples, seed

    def figure(self, model: MLPVAE, datamodule: pl.LightningDataModule) -> np.ndarray:
        generator = torch.Generator().manual_seed(self.seed)
        z = torch.randn(self.num_samples, model.latent_dim, generator=generator).to(device_of(model))
        return image_grid(decode_mean(model, z), nrow=int(np.ceil(np.sqrt(self.num_samples))))


def frozen_sigma_samples(model: torch.nn.Module, sigma: float, num_samples: int, seed: int) -> torch.Tensor:
    """Decoder means for z = 0 + σ·ε: the posterior's mean frozen at the origin and its spread at σ."""
    generator = torch.Generator().manual_seed(seed)
    z = sigma * torch.randn(num_samples, model.latent_dim, generator=generator)
    return decode_mean(model, z.to(device_of(model)))


def frozen_sigma_stats(samples: torch.Tensor) -> dict[str, float]:
    """Mean pixel intensity, mean per-pixel standard deviation across samples ("diversity"), sample count."""
    return {
        "mean_intensity": float(samples.mean()),
        "diversity": float(samples.std(0).mean()),
        "num_samples": len(samples),
    }


class FrozenSigma(pl.Callback):
    """At fit end: samples with μ = 0 and σ in ``sigmas`` side by side, and frozen_sigma.json with their stats."""

    def __init__(
        self, sigmas: list[float] = (0.1, 0.5, 1.0), num_samples: int = 1000, grid_samples: int = 64, seed: int = 0
    ) -> None:
        self.sigmas, self.num_samples, self.grid_samples, self.seed = list(sigmas), num_samples, grid_samples, seed

    @torch.no_grad()
    def study(self, model: MLPVAE, beta: float) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
        """The side-by-side sample grids and, per σ, their statistics."""
        fig = new_figure(3.2 * len(self.sigmas), 3.6)
        axes = fig.subplots(1, len(self.sigmas), squeeze=False)[0]
        stats = {}
        for ax, sigma in zip(axes, self.sigmas, strict=True):
            samples = frozen_sigma_samples(model, sigma, self.num_samples, self.seed)
            stats[f"{sigma:g}"] = frozen_sigma_stats(samples)
            ax.imshow(image_grid(samples[: self.grid_samples], nrow=int(np.sqrt(self.grid_samples))))
            ax.set_title(f"σ = {sigma:g} · diversity {stats[f'{sigma:g}']['diversity']:.3f}")
            ax.axis("off")
        fig.suptitle(f"β = {beta:g} · samples of z ~ N(0, σ²I)")
        return render(fig), stats

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        image, stats = self.study(pl_module.model, pl_module.beta)
        publish(trainer, "frozen_sigma", image)
        (figure_dir(trainer) / "frozen_sigma.json").write_text(json.dumps(stats, indent=2) + "\n")
        log_scalars(
            trainer,
            {f"frozen_sigma/{k}_sigma={s}": v[k] for s, v in stats.items() for k in ("mean_intensity", "diversity")},
        )


class Interpolation(EveryNEpochs):
    """Straight lines in latent space between posterior means of test images of different classes, one row
    per pair."""

    name = "interpolation"

    def __init__(
        self,
        every_n_epochs: int = 0,
        pairs: list[list[int]] = ((0, 1), (2, 3), (5, 7), (8, 9), (4, 6)),
        steps: int = 10,
    ) -> None:
        super().__init__(every_n_epochs)
        self.pairs, self.steps = [tuple(p) for p in pairs], steps

    def figure(self, model: MLPVAE, datamodule: pl.LightningDataModule) -> np.ndarray:
        images, labels = split_images(datamodule, "test", device_of(model))
        ends = torch.stack([images[first_per_class(labels, list(pair), 1)] for pair in self.pairs])  # [P, 2, 784]
        mu = model.encode(ends.flatten(0, 1))[0].view(len(self.pairs), 2, -1)
        t = torch.linspace(0, 1, self.steps, device=mu.device).view(1, -1, 1)
        path = mu[:, :1] * (1 - t) + mu[:, 1:] * t  # [P, steps, D]
        return image_grid(decode_mean(model, path.flatten(0, 1)), nrow=self.steps)


class LatentTraversal(EveryNEpochs):
    """For the ``num_dims`` dimensions with the highest average KL, vary one at a time over [-span, span]
    with the others at the posterior mean of one test image."""

    name = "latent_traversal"

    def __init__(
        self, every_n_epochs: int = 0, num_dims: int = 8, steps: int = 11, span: float = 3.0, image_index: int = 0
    ) -> None:
        super().__init__(every_n_epochs)
        self.num_dims, self.steps, self.span, self.image_index = num_dims, steps, span, image_index

    def figure(self, model: MLPVAE, datamodule: pl.LightningDataModule) -> np.ndarray:
        val, _ = split_images(datamodule, "val", device_of(model))
        dims = kl_per_dim(encode(model, val)).argsort(descending=True)[: self.num_dims]
        test, _ = split_images(datamodule, "test", device_of(model))
        base = encode(model, test[self.image_index : self.image_index + 1]).mu[0]
        values = torch.linspace(-self.span, self.span, self.steps, device=base.device)
        z = base.repeat(len(dims), self.steps, 1)
        z[torch.arange(len(dims)), :, dims] = values
        return image_grid(decode_mean(model, z.flatten(0, 1)), nrow=self.steps)
