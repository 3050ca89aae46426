import gzip

import numpy as np
import pytest
import torch

from betavae.base.errors import DataError
from betavae.data import idx
from betavae.data.fashion_mnist import FashionMNISTDataModule
from betavae.data.idx import IMAGE_MAGIC, LABEL_MAGIC, load_split, locate, read_idx
from betavae.data.memory import EpochSampler, TensorBatches
from tests.helpers import run_module, write_idx, write_split


def test_read_idx_round_trip_raw_and_gz(tmp_path):
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        path = write_idx(tmp_path / name, images, IMAGE_MAGIC)
        assert np.array_equal(read_idx(path, IMAGE_MAGIC), images)


def test_a_gz_file_rewritten_in_place_with_other_images_of_its_size_is_read_anew(tmp_path):
    path = tmp_path / "a-idx3-ubyte.gz"
    for value in (1, 2):  # same shape, same size on disk, new contents: never the first read's decompressed bytes
        write_idx(path, np.full((2, 28, 28), value, dtype=np.uint8), IMAGE_MAGIC)
        assert (read_idx(path, IMAGE_MAGIC) == value).all()


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda b: b[:-10], "truncated or corrupted"),
        (lambda b: b[:6], "too short"),
        (lambda b: b"\x00\x00\x08\x01" + b[4:], "bad IDX magic number 2049"),
    ],
)
def test_read_idx_rejects_corrupt_files_naming_them(tmp_path, corrupt, message):
    good = write_idx(tmp_path / "good-idx3-ubyte", np.zeros((3, 28, 28)), IMAGE_MAGIC)
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(corrupt(good.read_bytes()))
    with pytest.raises(DataError, match=message) as err:
        read_idx(bad, IMAGE_MAGIC)
    assert str(bad) in str(err.value)


def test_read_idx_rejects_broken_gzip(tmp_path):
    path = write_idx(tmp_path / "x-idx1-ubyte.gz", np.zeros(5), LABEL_MAGIC)
    path.write_bytes(path.read_bytes()[:15])
    with pytest.raises(DataError, match="cannot read file") as err:
        read_idx(path, LABEL_MAGIC)
    assert str(path) in str(err.value)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match=str(path)):
        read_idx(path, LABEL_MAGIC)


def test_load_split_checks_counts_shape_and_labels(tmp_path, monkeypatch):
    write_split(tmp_path, images=4)
    files = locate(tmp_path, system_dir=None, download=False)
    with pytest.raises(DataError, match="expected 60000 images of 28x28"):
        load_split(files, "train")
    monkeypatch.setitem(idx.SPLITS, "test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 4))
    images, labels = load_split(files, "test")
    assert images.shape == (4, 28, 28)
    assert images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 10, 2]), LABEL_MAGIC)
    with pytest.raises(DataError, match="label 10 outside the range 0-9"):
        load_split(files, "test")
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2]), LABEL_MAGIC)
    with pytest.raises(DataError, match="expected 4 labels, found 3"):
        load_split(files, "test")


def test_discovery_order_root_then_system_then_download(tmp_path, monkeypatch):
    root, system = tmp_path / "root", tmp_path / "system"
    downloads = []

    def fake_download(target):
        downloads.append(target)
        write_split(target / "FashionMNIST" / "raw")

    monkeypatch.setattr(idx, "_download", fake_download)
    write_split(system, gz=False)
    assert locate(root, system).keys()
    assert locate(root, system)["train-images-idx3-ubyte"].parent == system
    assert not downloads
    write_split(root / "FashionMNIST" / "raw")  # torchvision's layout in root wins over the system dir
    assert locate(root, system)["t10k-labels-idx1-ubyte"].parent == root / "FashionMNIST" / "raw"
    write_split(root)
    assert locate(root, system)["t10k-labels-idx1-ubyte"] == root / "t10k-labels-idx1-ubyte.gz"
    empty = tmp_path / "empty"
    assert locate(empty, tmp_path / "nothing")["train-images-idx3-ubyte"].parent == empty / "FashionMNIST" / "raw"
    assert downloads == [empty]


@pytest.mark.slow
def test_a_root_with_only_some_files_is_reported_when_data_comes_from_elsewhere(tmp_path, caplog, real_data_dir):
    root = tmp_path / "root"
    write_split(root)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()  # 3 of the 4 files
    with caplog.at_level("INFO", logger="betavae.data"):
        FashionMNISTDataModule(root=str(root), system_dir=str(real_data_dir), download=False).setup()
    assert f"Fashion-MNIST from {real_data_dir}" in caplog.text
    assert f"{root} holds only some of the four IDX files, so they came from {real_data_dir}" in caplog.text


def test_missing_data_error_lists_places_and_remedies(tmp_path, monkeypatch):
    def failing_download(target):
        raise OSError("no network")

    monkeypatch.setattr(idx, "_download", failing_download)
    with pytest.raises(DataError) as err:
        locate(tmp_path / "root", tmp_path / "system", download=True)
    message = str(err.value)
    for part in (str(tmp_path / "root"), str(tmp_path / "system"), "torchvision download", "dataset-fashion-mnist"):
        assert part in message


def test_sampler_shards_are_disjoint_and_change_per_epoch():
    shards = [EpochSampler(103, shuffle=True, drop_last=True, seed=3, rank=r, world_size=2) for r in range(2)]
    first = [s.indices() for s in shards]
    assert len(first[0]) == len(first[1]) == len(shards[0]) == 51
    assert not set(first[0].tolist()) & set(first[1].tolist())
    for s in shards:
        s.set_epoch(1)
    assert not torch.equal(shards[0].indices(), first[0])
    shards[0].set_epoch(0)
    assert torch.equal(shards[0].indices(), first[0])
    evaluation = [EpochSampler(103, shuffle=False, drop_last=False, rank=r, world_size=2) for r in range(2)]
    covered = sorted(i for s in evaluation for i in s.indices().tolist())
    assert covered == list(range(103))
    assert [len(s) for s in evaluation] == [52, 51]
    in_order = EpochSampler(103, shuffle=False, drop_last=True, world_size=2)
    assert torch.equal(in_order.indices(), torch.arange(0, 102, 2))  # no shuffle, remainder dropped


def test_tensor_batches_cover_every_image_once():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1).expand(10, 2, 2).contiguous()
    batches = TensorBatches(images, torch.arange(10), 4, EpochSampler(10, shuffle=True, drop_last=False))
    out = list(batches)
    assert len(out) == len(batches) == 3
    assert [len(y) for _, y in out] == [4, 4, 2]
    x = torch.cat([x for x, _ in out])
    y = torch.cat([y for _, y in out])
    assert x.shape == (10, 4)
    assert sorted(y.tolist()) == list(range(10))
    assert torch.allclose(x[:, 0] * 255, y.float())


@pytest.mark.slow
def test_datamodule_on_real_data(real_data_dir, tmp_path):
    dm = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False, val_size=5000)
    dm.setup("fit")
    sizes = {name: len(x) for name, (x, _) in dm.splits.items()}
    assert sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (128, 784)
    assert x.dtype == torch.float32
    assert x.min() >= 0
    assert x.max() <= 1
    assert set(dm.splits["test"][1].unique().tolist()) == set(range(10))
    assert len(dm.val_dataloader()) == 5
    assert len(dm.train_dataloader()) == 430
    again = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False, seed=7)
    again.setup()
    assert torch.equal(again.splits["val"][0], dm.splits["val"][0])  # the split follows split_seed only
    label_file = next(real_data_dir.glob("t10k-labels-idx1-ubyte*"))
    raw = label_file.read_bytes()
    first = (gzip.decompress(raw) if label_file.suffix == ".gz" else raw)[8:18]
    assert dm.splits["test"][1][:10].tolist() == list(first)
    images, labels = dm.images("val")
    assert images.shape == (5000, 784)
    assert images.dtype == torch.float32
    assert torch.equal(labels, dm.splits["val"][1])
    assert torch.equal(images * 255, dm.splits["val"][0].flatten(1).float())


@pytest.mark.slow
def test_data_cli_prints_where_the_files_are(real_data_dir, tmp_path):
    found = run_module(
        "betavae.data", f"data.root={tmp_path}", f"data.system_dir={real_data_dir}", "data.download=false"
    )
    assert found.stdout.strip().splitlines()[-1] == str(real_data_dir)
    missing = run_module(
        "betavae.data", f"data.root={tmp_path}/a=b,c", "data.system_dir=null", "data.download=false", check=False
    )
    assert missing.returncode != 0
    assert f"{tmp_path}/a=b,c" in missing.stderr  # a path with = and , unquoted


@pytest.mark.slow
def test_binarize_draws_fresh_training_images_per_epoch_and_fixes_val_and_test(real_data_dir, tmp_path):
    def module(seed):
        dm = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False, seed=seed,
                                    binarize=True)  # fmt: skip
        dm.setup()
        return dm

    dm, other_run = module(42), module(7)
    test, _ = dm.observed("test")
    assert set(test.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(test, other_run.observed("test")[0])  # the same binary test set in every run
    gray = dm.images("test")[0]
    assert abs(float(test.mean() - gray.mean())) < 2e-3  # E[binary pixel] = intensity
    loader = dm.train_dataloader()
    first = next(iter(loader))[0]
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(first, next(iter(loader))[0])  # re-iterable
    loader.sampler.set_epoch(1)
    assert not torch.equal(first, next(iter(loader))[0])  # a new epoch draws new images (and a new order)
    loader.sampler.set_epoch(0)
    assert torch.equal(first, next(iter(loader))[0])  # ... seeded, so a resumed epoch draws the same
    val_batch = next(iter(dm.val_dataloader()))[0]
    assert torch.equal(val_batch, dm.observed("val")[0][: len(val_batch)])
    plain = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False)
    assert torch.equal(plain.observed("test")[0], plain.images("test")[0])  # without binarize: the gray images


@pytest.mark.slow
def test_bernoulli_floor_on_the_test_images_is_189_9_nats(real_data_dir, tmp_path):
    from betavae.model.likelihoods import entropy_floor

    dm = FashionMNISTDataModule(root=str(tmp_path), system_dir=str(real_data_dir), download=False)
    test = dm.images("test")[0]
    assert float(entropy_floor(test).mean()) == pytest.approx(189.9, abs=0.05)  # the README's figure
    assert float(((test > 0) & (test < 1)).float().mean()) == pytest.approx(0.492, abs=5e-4)  # grayscale pixels
