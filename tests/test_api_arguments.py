"""The Python API refuses, in one line naming the argument and what it takes, every argument it cannot use, and
takes the images a user has in the forms they come in."""

import pytest
import torch

from betavae.api import Run, device_of
from betavae.base.errors import UsageError
from betavae.model.module import BetaVAEModule
from betavae.model.networks import MLPVAE
from betavae.model.objectives import BetaObjective
from tests.helpers import compose_train


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A Run around an untrained reference model (the checks need no training)."""
    torch.manual_seed(0)
    module = BetaVAEModule(MLPVAE(), BetaObjective(1.0)).eval()
    return Run(tmp_path_factory.mktemp("run"), tmp_path_factory.mktemp("run") / "x.ckpt", module, compose_train(), None)


def test_encode_takes_floats_of_any_precision_uint8_pixels_and_images_flat_or_shaped_alike(run):
    pixels = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    floats = pixels.float() / 255
    expected = run.encode(floats.flatten(1)).mu
    for given in (pixels, floats, floats.double(), floats[:, None], pixels.flatten(1)):
        assert torch.allclose(run.encode(given).mu, expected, atol=1e-6), given.dtype


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (torch.rand(3, 100), r"^images: a tensor of images \[N, 784\] or \[N, 1, 28, 28\] .*, got shape \(3, 100\)$"),
        (torch.rand(784), r"^images: .*, got shape \(784,\)$"),
        (torch.ones(2, 784, dtype=torch.int64), r"^images: .*, got dtype torch.int64$"),
        ([[0.0] * 784], r"^images: .*, got list$"),
    ],
)
def test_encode_refuses_what_are_not_images_of_the_runs_shape_in_one_line(run, images, message):
    with pytest.raises(UsageError, match=message):
        run.encode(images)


@pytest.mark.parametrize(("dim", "message"), [(-1, r"^dim=-1: must be a latent index in \[0, 20\)$"),
                                              (20, r"^dim=20: must be a latent index in \[0, 20\)$"),
                                              (2.0, r"^dim=2.0: must be a latent index")])  # fmt: skip
def test_traverse_refuses_a_latent_the_model_does_not_have(run, dim, message):
    with pytest.raises(UsageError, match=message):
        run.traverse(torch.rand(784), dim, [0.0, 1.0])


def test_traverse_takes_an_image_flat_or_shaped(run):
    image = torch.rand(28, 28, generator=torch.Generator().manual_seed(2))
    assert torch.equal(run.traverse(image, 3, [0.5]), run.traverse(image.flatten(), 3, [0.5]))


def test_decode_and_sample_refuse_codes_and_counts_they_cannot_take(run):
    with pytest.raises(UsageError, match=r"^z: a float tensor of codes \[N, 20\], got \(4, 10\)$"):
        run.decode(torch.zeros(4, 10))
    with pytest.raises(UsageError, match=r"^n=0: must be an integer >= 1$"):
        run.sample(0)


@pytest.mark.parametrize(
    ("device", "message"),
    [("bogus", r"^device='bogus': must be 'cpu', 'cuda' or 'cuda:N'$"),
     ("cuda", r"^device='cuda': CUDA is not available on this machine; use device='cpu'$")],
)  # fmt: skip
def test_a_device_that_is_none_or_missing_here_is_refused_before_any_file_is_read(device, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # as on a machine without CUDA
    with pytest.raises(UsageError, match=message):
        device_of(device)
