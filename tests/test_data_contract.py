"""The data contract: what a data module declares (image shape with channels, classes, factors, FID networks) is
what the scorers, figures and networks ask; a colour data set that is one file and one YAML (tests/rgb_shapes.py)
goes through both networks, every figure, the scores, evaluate and the summary."""

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from betavae.base.errors import DataError
from betavae.data.contract import ImageData
from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.data.memory import InMemoryDataModule
from betavae.data.shapes import ShapesDataModule
from tests.helpers import TESTS_CONF, limits, run_module, strict_json
from tests.rgb_shapes import ColouredShapesDataModule


def small_rgb():
    return ColouredShapesDataModule(image_size=8, positions=4, scales=1, orientations=2, val_size=5, test_size=10)


def test_what_each_data_set_offers_is_declared_and_what_it_lacks_is_one_line():
    fashion, shapes = FashionMNISTDataModule(), ShapesDataModule()
    assert fashion.lacks("classes") is None
    assert fashion.lacks("factors") == "data=fashion_mnist has no ground-truth factors of variation"
    assert shapes.lacks("classes") == "data=shapes has no classes"
    assert shapes.lacks("factors") is None
    assert (fashion.fid_features, shapes.fid_features) == (("fashion", "inception"), ("inception",))
    assert (tuple(fashion.image_shape), tuple(shapes.image_shape)) == ((1, 28, 28), (1, 32, 32))
    with pytest.raises(ValueError, match="unknown data capability 'labels'"):
        fashion.lacks("labels")


def test_a_data_set_whose_images_are_not_the_shape_it_declares_is_refused_in_one_line():
    class Wrong(InMemoryDataModule):
        name, image_size, channels = "wrong", 4, 3

        def load(self):
            images = torch.zeros(6, 1, 4, 4, dtype=torch.uint8)
            return {split: (images, torch.zeros(6)) for split in ("train", "val", "test")}

    with pytest.raises(DataError, match=r"^data=wrong: its train images are \(1, 4, 4\), and it declares \(3, 4, 4\)"):
        Wrong(8, 8, 2, 0, False, 0).setup()


def test_a_colour_data_set_gives_three_channels_in_ravel_order_of_its_factors():
    data = small_rgb()
    assert tuple(data.image_shape) == (3, 8, 8)
    assert data.factor_sizes == (3, 1, 2, 4, 4, 3)
    every = np.stack(np.unravel_index(np.arange(int(np.prod(data.factor_sizes))), data.factor_sizes), axis=1)
    grid = torch.cat(list(data.grid_images(batch=50)))
    assert torch.equal(grid, data.images_of(every))
    pixels = grid.view(-1, 3, 8, 8)
    for colour in range(3):  # red, green, blue: the sprite in that channel alone
        lit = pixels[every[:, -1] == colour].sum(dim=(0, 2, 3))
        assert lit.argmax() == colour
        assert lit[[c for c in range(3) if c != colour]].sum() == 0
    assert data.images("test")[0].shape == (10, 3 * 8 * 8)


def test_the_contract_is_all_a_scorer_asks_of_a_data_set():
    assert issubclass(ColouredShapesDataModule, ImageData)
    assert small_rgb().lacks("factors") is None


SMOKE_FAMILIES = "[disentanglement,modularity,irs,infomec]"  # as the _smoke experiments: 500 codes reach no ratio


@pytest.fixture(scope="module")
def rgb_sweep(tmp_path_factory):
    """Both networks on the colour data, every callback, one epoch of 5 batches, every score on fewer codes."""
    root = tmp_path_factory.mktemp("rgb") / "sweep"
    run_module("betavae.train", "-m", "model=mlp,conv", TESTS_CONF, "data=rgb_shapes", "model.net.latent_dim=6",
               "trainer.max_epochs=1", *limits(train=5), "callbacks.latent_evolution.per_class=30",
               "disentanglement.num_train=500", "disentanglement.num_test=300",
               "disentanglement.num_variance_estimate=500", f"disentanglement.families={SMOKE_FAMILIES}",
               f"hydra.sweep.dir={root}")  # fmt: skip
    overrides = {job: OmegaConf.load(job / ".hydra" / "overrides.yaml") for job in root.iterdir() if job.is_dir()}
    return {next(o for o in listed if o.startswith("model=")).split("=")[1]: job  # a long name is shortened
            for job, listed in overrides.items()}  # fmt: skip


def colour_pixels(path):
    """How many pixels of a PNG differ between its red, green and blue channels."""
    image = iio.imread(path)[..., :3].astype(int)
    return int(((image[..., 0] != image[..., 1]) | (image[..., 1] != image[..., 2])).sum())


@pytest.mark.slow
@pytest.mark.parametrize("network", ["mlp", "conv"])
def test_both_networks_train_and_test_on_colour_images_with_every_score(rgb_sweep, network):
    metrics = strict_json(rgb_sweep[network] / "metrics.json")
    assert metrics["status"] == "ok"
    for key in ("test/recon", "test/kl", "test/mi", "test/active_units", "test/mig", "test/betavae_score"):
        assert np.isfinite(metrics[key]), key
    saved = np.load(rgb_sweep[network] / "disentanglement.npz")
    assert saved["factor_names"].tolist() == ["shape", "scale", "orientation", "x", "y", "colour"]
    assert saved["codes_train"].shape == (500, 6)


@pytest.mark.slow
@pytest.mark.parametrize("figure", ["reconstructions", "prior_samples", "interpolation", "latent_traversal",
                                    "frozen_sigma"])  # fmt: skip
def test_the_figures_of_a_colour_data_set_are_in_colour(rgb_sweep, figure):
    assert colour_pixels(rgb_sweep["conv"] / "figures" / f"{figure}.png") > 100


@pytest.mark.slow
def test_evaluate_and_the_summary_take_a_colour_data_set_as_any_other(rgb_sweep):
    job = rgb_sweep["mlp"]
    run_module("betavae.evaluate", f"run_dir={job}", "eval.limit=50", "eval.iw_samples=5",
               "disentanglement.num_train=500", "disentanglement.num_test=300",
               "disentanglement.num_variance_estimate=500", f"disentanglement.families={SMOKE_FAMILIES}")  # fmt: skip
    evaluation, metrics = strict_json(job / "evaluation.json"), strict_json(job / "metrics.json")
    assert evaluation["test/mig"] == pytest.approx(metrics["test/mig"], rel=1e-6)
    assert 0 < evaluation["test/iw_ess"] <= 1
    assert "test/fid" not in evaluation  # fid=fashion knows Fashion-MNIST alone
    assert colour_pixels(job / "figures" / "reconstructions.png") > 100
    table = (job.parent / "summary.md").read_text()
    assert "| model=conv |" in table
    assert "| model=mlp |" in table
