"""The FID metric on real Fashion-MNIST: it must rank real, damaged and fake image sets sensibly."""

import itertools
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

from betavae.base.errors import ConfigError
from betavae.data.idx import SYSTEM_DIR, load_split, locate
from betavae.metrics.fid import (
    FEATURES_FILE,
    FEATURES_SHA256,
    FEATURES_TEST_ACCURACY,
    REAL_STATS,
    fid_against_real,
    file_sha256,
    load_features,
    make_metric,
    set_real,
)
from betavae.metrics.fid_features import accuracy
from tests.helpers import run_module

N = 10_000


@pytest.fixture(scope="module")
def data(real_data_dir):
    """Real (uint8) train and test images with test labels."""
    files = locate(real_data_dir, SYSTEM_DIR, download=False)
    train, _ = load_split(files, "train")
    test, labels = load_split(files, "test")
    return train, test, labels


@pytest.fixture(scope="module")
def metric(data, tmp_path_factory):
    """FID on the shipped features with the 10,000 test images as the real set."""
    fid = make_metric("fashion")
    set_real(fid, data[1], tmp_path_factory.mktemp("cache"))
    return fid


def blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of uint8 images, returned as floats in [0, 1]."""
    x = images.float().unsqueeze(1) / 255
    return gaussian_blur(x, kernel_size=2 * round(3 * sigma) + 1, sigma=sigma).squeeze(1)


@pytest.mark.slow
def test_fid_ranks_real_far_below_broken_sets(metric, data):
    train, test, _ = data
    real = fid_against_real(metric, train[:N])
    n = 2000  # a broken set is far at any size: fewer of its images keep the test quick
    broken = {
        "uniform noise": fid_against_real(metric, torch.rand(n, 28, 28, generator=torch.Generator().manual_seed(0))),
        "pixel-shuffled": fid_against_real(metric, test[:n].flatten(1)[:, torch.randperm(784)]),
        "one repeated image": fid_against_real(metric, test[:1].expand(n, 28, 28)),
    }
    assert real < 1.0, real
    for name, value in broken.items():
        assert value > 50 * real, (name, value, real)


@pytest.mark.slow
def test_fid_grows_monotonically_with_blur(metric, data):
    test = data[1]
    values = [fid_against_real(metric, blur(test[:2000], sigma)) for sigma in (0.5, 1.0, 1.5, 2.0, 3.0)]
    assert all(a < b for a, b in itertools.pairwise(values)), values
    itself = make_metric("fashion")  # a real set against itself: 2,000 images, not the 10,000 again
    set_real(itself, test[:2000], cache_dir=None)
    assert fid_against_real(itself, test[:2000]) < 1e-6 < values[0]


@pytest.mark.slow
def test_fid_is_deterministic(metric, data):
    train = data[0][N : N + 2000]
    assert fid_against_real(metric, train) == fid_against_real(metric, train)


@pytest.mark.slow
def test_cached_real_statistics_equal_fresh_ones(data, tmp_path):
    test = data[1][:3000]
    fresh, first, cached = make_metric("fashion"), make_metric("fashion"), make_metric("fashion")
    set_real(fresh, test, cache_dir=None)
    path = set_real(first, test, tmp_path)
    assert path is not None
    assert path.is_file()
    assert len(list(tmp_path.iterdir())) == 1
    assert set_real(cached, test, tmp_path) == path
    for name in REAL_STATS:
        assert torch.equal(getattr(cached, name), getattr(fresh, name)), name
    other = set_real(make_metric("fashion"), test[:1000], tmp_path)
    assert other != path  # another image set gets another cache entry
    assert path.name.endswith("-cpu-highest.pt")  # and other arithmetic too: device type, float32 matmul precision
    torch.set_float32_matmul_precision("medium")  # bfloat16 matmuls allowed: other statistics
    try:
        assert set_real(make_metric("fashion"), test[:1000], tmp_path).name.endswith("-cpu-medium.pt")
    finally:
        torch.set_float32_matmul_precision("highest")


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "random bytes", "altered contents"])
def test_damaged_real_statistics_cache_is_recomputed_with_a_warning(data, tmp_path, caplog, damage):
    test = data[1][:1000]
    fresh = make_metric("fashion")
    path = set_real(fresh, test, tmp_path)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4000))
    else:  # a valid file whose statistics were changed (the stored hash no longer matches them)
        state = torch.load(path, weights_only=True)
        state["real_features_sum"] *= 1.1
        torch.save(state, path)
    cached = make_metric("fashion")
    with caplog.at_level("WARNING", logger="betavae.metrics.fid"):
        assert set_real(cached, test, tmp_path) == path
    assert "ignoring cached real statistics" in caplog.text
    assert "recomputing" in caplog.text
    for name in REAL_STATS:
        assert torch.equal(getattr(cached, name), getattr(fresh, name)), name
    caplog.clear()  # the recomputed cache is healthy again
    set_real(make_metric("fashion"), test, tmp_path)
    assert "ignoring" not in caplog.text


@pytest.mark.slow
def test_shipped_feature_network_has_its_recorded_test_accuracy(data):
    _, test, labels = data
    measured = accuracy(load_features(), test, labels)
    assert abs(measured - FEATURES_TEST_ACCURACY) <= 0.5
    assert measured >= 91.0


def test_shipped_weights_have_the_expected_hash_and_size():
    assert file_sha256(FEATURES_FILE) == FEATURES_SHA256
    assert FEATURES_FILE.stat().st_size < 2_000_000


def test_tampered_weights_are_refused(tmp_path):
    copy = tmp_path / "features.pt"
    shutil.copy(FEATURES_FILE, copy)
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"SHA-256 \w+, expected \w+: refusing"):
        load_features(copy)


@pytest.mark.slow
def test_inception_without_weights_stops_before_training(tmp_path):
    run = tmp_path / "run"
    result = run_module(
        "betavae.train",
        "fid=inception",
        f"fid.inception_weights={tmp_path}/missing.pth",
        f"hydra.run.dir={run}",
        check=False,
    )
    assert result.returncode != 0
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("Invalid config: fid=inception needs")
    assert "fid=fashion" in last
    assert not (run / "checkpoints").exists()
    assert not (run / "tensorboard").exists()


def _inception_weights() -> str | None:
    """torch-fidelity's InceptionV3 weights, from $BETAVAE_INCEPTION_WEIGHTS or the torch hub cache."""
    from betavae.metrics.fid import INCEPTION_WEIGHTS

    for candidate in (
        os.environ.get("BETAVAE_INCEPTION_WEIGHTS"),
        f"{torch.hub.get_dir()}/checkpoints/{INCEPTION_WEIGHTS}",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.mark.skipif(_inception_weights() is None, reason="InceptionV3 weights not available offline")
@pytest.mark.slow
def test_inception_fid_ranks_noise_above_real(data):
    train, test, _ = data
    fid = make_metric("inception", _inception_weights())
    set_real(fid, test[:1000], cache_dir=None, batch_size=100)
    real = fid_against_real(fid, train[:1000], batch_size=100)
    assert real < fid_against_real(fid, torch.rand(1000, 28, 28), batch_size=100)
