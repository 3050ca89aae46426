"""Callbacks on a real 2-epoch fit (small limits) and their geometry on synthetic cases."""

import json

import imageio.v3 as iio
import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from scipy.stats import special_ortho_group
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from betavae.callbacks.latent_evolution import LatentEvolution
from betavae.callbacks.metrics import FIDMetrics
from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.figures.evolution import aligned_projections, pca_2d, shared_limits
from betavae.metrics.fid import FIDScorer
from betavae.metrics.latents import active_units
from betavae.model.module import BetaVAEModule
from betavae.model.networks import MLPVAE, ConvVAE, Posterior
from betavae.model.objectives import BetaObjective
from tests.helpers import compose_train

FIGURES = {  # name: (height, width) of the PNG, from the grid layout (30 px per 28 px image with padding)
    "reconstructions": (4 * 30 + 2, 10 * 30 + 2),
    "prior_samples": (8 * 30 + 2, 8 * 30 + 2),
    "interpolation": (5 * 30 + 2, 10 * 30 + 2),
    "latent_traversal": (8 * 30 + 2, 11 * 30 + 2),
}


def fit(root, real_data_dir, *overrides, fid_every=1, max_epochs=2):
    """A real fit on real data (small limits) with the default figure and metric callbacks and FID on 500
    images and samples, two draws; returns the callbacks by name."""
    cfg = compose_train("callbacks.latent_evolution.per_class=200", *overrides)
    skip = ("checkpoint", "last_checkpoint", "progress_bar", "fid")  # Hydra-run paths; FID is made small below
    callbacks = {name: instantiate(node) for name, node in cfg.callbacks.items() if name not in skip}
    scorer = FIDScorer(num_images=500, sample_seeds=[0, 1], recon=False, cache_dir=root / "fid_cache")
    callbacks["fid"] = FIDMetrics(scorer, every_n_epochs=fid_every)
    pl.seed_everything(0)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        limit_train_batches=40,
        limit_val_batches=2,
        accelerator="cpu",
        default_root_dir=root,
        logger=pl.loggers.TensorBoardLogger(root, name="tensorboard", version=""),
        callbacks=list(callbacks.values()),
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    datamodule = FashionMNISTDataModule(root=str(root), system_dir=str(real_data_dir), download=False)
    trainer.fit(BetaVAEModule(MLPVAE(), BetaObjective(1.0)), datamodule=datamodule)
    return callbacks


def tensorboard(root):
    """The run's TensorBoard events, every image kept."""
    events = EventAccumulator(str(root / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, real_data_dir):
    """A 2-epoch fit with every default callback; returns (root dir, callbacks by name)."""
    root = tmp_path_factory.mktemp("fit")
    return root, fit(root, real_data_dir, "callbacks.reconstructions.every_n_epochs=1")


@pytest.mark.slow
def test_every_figure_is_written_and_logged_to_tensorboard(fitted):
    root, _ = fitted
    figures = root / "figures"
    for name in ("latent_evolution", "frozen_sigma", "kl_per_dim", "training_curves", *FIGURES):
        assert (figures / f"{name}.png").is_file(), name
    for name, shape in FIGURES.items():
        assert iio.imread(figures / f"{name}.png").shape == (*shape, 3), name
    events = tensorboard(root)
    images = events.Tags()["images"]
    for name in ("latent_evolution", "frozen_sigma", "kl_per_dim", "training_curves", *FIGURES):
        assert name in images, name
    assert [e.step for e in events.Images("latent_evolution")] == [0, 1, 2]  # one image per frame, by epoch
    assert len(events.Images("reconstructions")) == 2  # after epoch 1 (every_n_epochs=1) and at fit end
    scalars = events.Tags()["scalars"]
    assert "val/active_units" in scalars
    assert "frozen_sigma/diversity_sigma_0.5" in scalars
    assert [s.step for s in events.Scalars("val/fid")] == [39, 79]
    assert events.Scalars("val/fid")[0].value > 0
    units = [s.value for s in events.Scalars("val/active_units")]
    assert len(units) == 2
    assert all(0 <= u <= 20 for u in units)


@pytest.mark.slow
def test_latent_evolution_gif_frames_share_size_and_axes(fitted):
    root, callbacks = fitted
    evolution: LatentEvolution = callbacks["latent_evolution"]
    gif = iio.imread(root / "figures" / "latent_evolution.gif", index=None)
    assert gif.shape[0] == 3 == len(evolution.frames)  # before training, after epoch 1, after epoch 2
    assert [f.epoch for f in evolution.frames] == [0, 1, 2]
    assert evolution.frames[0].val_loss is None
    assert evolution.frames[2].val_loss > 0
    assert evolution.frames[0].mu.shape == (600, 20)  # 200 validation images of each of 3 classes
    views = aligned_projections([f.mu for f in evolution.frames])
    (x0, x1), (y0, y1) = shared_limits(views)
    assert all(x0 < v[:, 0].min() and v[:, 0].max() < x1 and y0 < v[:, 1].min() and v[:, 1].max() < y1 for v in views)
    meta = iio.immeta(root / "figures" / "latent_evolution.gif", index=2)
    assert meta["duration"] == 2000  # the last frame is held longer


@pytest.mark.slow
def test_frozen_sigma_diversity_grows_with_sigma(fitted):
    root, _ = fitted
    stats = json.loads((root / "figures" / "frozen_sigma.json").read_text())
    assert list(stats) == ["0.1", "0.5", "1"]
    diversity = [stats[s]["diversity"] for s in stats]
    assert diversity[0] < diversity[1] < diversity[2]
    assert all(stats[s]["num_samples"] == 1000 and 0 < stats[s]["mean_intensity"] < 1 for s in stats)


@pytest.mark.slow
def test_training_curves_read_logged_epochs(fitted):
    _, callbacks = fitted
    history = callbacks["training_curves"].history
    assert [h["epoch"] for h in history] == [1, 2]
    assert all({"train/recon", "train/kl", "train/loss", "val/recon", "val/kl", "val/loss"} <= set(h) for h in history)
    assert history[1]["train/loss"] < history[0]["train/loss"]


@pytest.fixture(scope="module")
def fitted_every_0(tmp_path_factory, real_data_dir):
    """A 3-epoch fit with every periodic callback at every_n_epochs=0 (and val/fid off)."""
    root = tmp_path_factory.mktemp("every0")
    periodic = ("latent_evolution", "reconstructions", "prior_samples", "interpolation", "latent_traversal")
    overrides = [f"callbacks.{name}.every_n_epochs=0" for name in (*periodic, "latent_stats")]
    return root, fit(root, real_data_dir, *overrides, fid_every=0, max_epochs=3)


@pytest.mark.slow
def test_every_n_epochs_0_draws_only_when_fitting_ends(fitted_every_0):
    root, callbacks = fitted_every_0
    assert [f.epoch for f in callbacks["latent_evolution"].frames] == [0, 3]  # before training and at the end
    assert iio.imread(root / "figures" / "latent_evolution.gif", index=None).shape[0] == 2
    events = tensorboard(root)
    for name in ("reconstructions", "prior_samples", "interpolation", "latent_traversal", "kl_per_dim"):
        assert [e.step for e in events.Images(name)] == [120], name  # once, at fit end (3 epochs of 40 steps)
    assert "val/fid" not in events.Tags()["scalars"]
    assert len(events.Scalars("val/active_units")) == 3  # a metric, logged every epoch whatever the figures do


def test_alignment_undoes_a_pca_sign_flip():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    rotated = points @ special_ortho_group.rvs(5, random_state=2)  # same cloud, other latent basis
    naive = [pca_2d(rotated), pca_2d(points)]
    assert not np.allclose(naive[0], naive[1], atol=1e-6)  # per-frame PCA flipped an axis here
    assert np.allclose(np.abs(naive[0]), np.abs(naive[1]), atol=1e-6)
    aligned = aligned_projections([rotated, points])
    assert np.allclose(aligned[0], aligned[1], atol=1e-6)
    noisy = aligned_projections([rotated + rng.normal(scale=0.05, size=rotated.shape), points])
    assert np.abs(noisy[0] - noisy[1]).max() < 0.5


def test_two_dimensional_latents_are_shown_as_they_are():
    frames = [np.random.default_rng(1).normal(size=(50, 2)) for _ in range(2)]
    views = aligned_projections(frames)
    assert all(np.allclose(v, f - f.mean(0)) for v, f in zip(views, frames, strict=True))


def test_a_one_dimensional_latent_is_shown_across_with_a_fixed_random_spread():
    frames = [np.random.default_rng(i).normal(size=(50, 1)) for i in range(2)]
    views = aligned_projections(frames)
    assert all(np.allclose(v[:, 0], f[:, 0] - f[:, 0].mean()) for v, f in zip(views, frames, strict=True))
    assert np.array_equal(views[0][:, 1], views[1][:, 1])  # the same spread in every frame


@pytest.mark.parametrize("network", [MLPVAE, ConvVAE])
@pytest.mark.parametrize("latent_dim", [1, 2, 3])
def test_every_default_figure_is_drawn_from_the_smallest_latent_size_up_on_both_networks(network, latent_dim):
    from betavae.data.fashion_mnist import CLASS_NAMES
    from betavae.figures import draw as figures
    from betavae.figures.evolution import Frame, evolution_images
    from betavae.model.networks import encode_all

    settings = compose_train().figures
    torch.manual_seed(0)
    model, images, groups = network(latent_dim=latent_dim), torch.rand(40, 784), torch.arange(40) % 10
    drawn = [
        figures.reconstructions(model, images, groups, **settings.reconstructions),
        figures.prior_samples(model, **settings.prior_samples),
        figures.interpolation(model, images, groups, **settings.interpolation),
        figures.kl_per_dim_chart(encode_all(model, images), "β = 1"),
        figures.frozen_sigma(model, "β = 1", **{**settings.frozen_sigma, "num_samples": 100})[0],
    ]
    traversal = dict(settings.latent_traversal)
    drawn.append(figures.latent_traversal(model, images, images[traversal.pop("image_index")], **traversal))
    frames = [Frame(epoch, encode_all(model, images).mu.numpy(), None) for epoch in (0, 1)]
    drawn += evolution_images(frames, groups.numpy(), [0, 1, 2], CLASS_NAMES, "β = 1")
    assert all(image.ndim == 3 and image.shape[2] == 3 for image in drawn)
    assert drawn[5].shape[0] == min(latent_dim, traversal["num_dims"]) * 30 + 2  # a row per latent


def test_active_units_counts_dimensions_that_vary():
    mu = torch.zeros(1000, 6)
    mu[:, :3] = torch.randn(1000, 3)
    mu[:, 3] = 0.05 * torch.randn(1000)  # variance 0.0025 < 0.01: inactive
    assert active_units(Posterior(mu, torch.zeros_like(mu))) == 3
