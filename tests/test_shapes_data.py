"""The shapes data (`data=shapes`): every factor combination once, binary sprites never cut by the frame, the
image of any factor combination, deterministic rendering, bad settings refused naming the key."""

import numpy as np
import pytest
import torch

from betavae.base.errors import ConfigError
from betavae.data.shapes import SHAPES, ShapesDataModule, grid_factors, render, sprites


def test_the_shapes_grid_has_every_factor_combination_once_as_a_binary_image_inside_the_frame():
    data = ShapesDataModule(scales=3, orientations=4, positions=8, image_size=16, val_size=50, test_size=100)
    data.setup()
    assert len(data.grid) == 3 * 3 * 4 * 8 * 8
    assert set(torch.unique(data.grid).tolist()) == {0, 255}
    labels = torch.cat([data.splits[s][1] for s in ("train", "val", "test")])
    assert len({tuple(row) for row in labels.tolist()}) == len(data.grid)  # every combination, once
    assert [data.size(s) for s in ("train", "val", "test")] == [len(data.grid) - 150, 50, 100]
    patches = sprites(SHAPES, np.linspace(0.5, 1, 3), np.arange(4) * 22.5, 9)
    assert patches.sum(axis=(-1, -2)).min() > 0  # no sprite is empty
    assert not (patches & ~_disc(9)).any()  # each sprite inside the patch's inscribed disc: never cut off


def _disc(side):
    centres = (np.arange(side) + 0.5) / (side / 2) - 1
    return np.hypot(*np.meshgrid(centres, centres)) <= 1


def test_an_image_of_factor_indices_is_the_grid_image_those_labels_name():
    data = ShapesDataModule(scales=2, orientations=2, positions=4, image_size=8, val_size=5, test_size=10)
    data.setup()
    images, labels = data.splits["test"]
    assert torch.equal(data.images_of(labels.numpy()), images.flatten(1).float() / 255)
    moved = labels.numpy().copy()
    moved[:, 3] = (moved[:, 3] + 1) % 4  # another x: the same sprite, shifted right by one pixel
    shifted = data.images_of(moved).view(-1, 8, 8)
    inside = labels[:, 3] < 3
    assert torch.equal(shifted[inside][:, :, 1:], images[inside].float().div(255)[:, 0, :, :-1])


def test_the_grid_comes_in_ravel_order_of_the_factors_with_one_channel():
    data = ShapesDataModule(scales=2, orientations=2, positions=4, image_size=8, val_size=5, test_size=10)
    every = np.stack(np.unravel_index(np.arange(3 * 2 * 2 * 4 * 4), data.factor_sizes), axis=1)
    assert torch.equal(torch.cat(list(data.grid_images(batch=7))), data.images_of(every))
    assert data.images("train")[0].shape[1] == 8 * 8
    assert tuple(data.image_shape) == (1, 8, 8)


def test_rendering_is_deterministic_and_each_factor_changes_the_image():
    factors = grid_factors(16, 3, 3, 4, 90.0, 8)
    first, again = render(16, factors), render(16, factors)
    assert np.array_equal(first, again)
    grid = first.reshape(3, 3, 4, 8, 8, 16, 16)
    for axis in range(5):
        moved = np.take(grid, 1, axis=axis)
        base = np.take(grid, 0, axis=axis)
        assert (moved != base).any(axis=(-1, -2)).mean() > 0.7, f"factor {axis}"


def test_bad_shapes_settings_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"^positions=20: must be in \[1, image_size // 2 = 16\]"):
        ShapesDataModule(positions=20)
    with pytest.raises(ConfigError, match=r"^val_size=40000: with test_size=10000 must leave training images"):
        ShapesDataModule(val_size=40_000, test_size=10_000)


def test_the_splits_are_slices_of_the_one_rendered_grid_not_copies_of_it():
    data = ShapesDataModule(scales=2, orientations=2, positions=4, image_size=8, val_size=5, test_size=10)
    data.setup()
    storage = data.grid.untyped_storage().data_ptr()
    for split in ("train", "val", "test"):
        assert data.splits[split][0].untyped_storage().data_ptr() == storage, split
    assert sum(data.size(s) for s in ("train", "val", "test")) == len(data.grid)
