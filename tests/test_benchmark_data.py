"""dSprites, 3D Shapes and MPI3D from files in their exact published layouts (written small by the tests: the same
keys, dtypes and ordering, few factor values; never the real data): their factors, grid order and values, the
one line a missing, truncated or wrong-layout file gets, the cache the images are converted into once, and a
smoke run of each with every score and UDR."""

import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from betavae.base.errors import DataError
from betavae.data import DSpritesDataModule, MPI3DDataModule, Shapes3DDataModule
from tests.helpers import limits, run_module, sprite_images, strict_json, write_dsprites, write_mpi3d, write_shapes3d

SMALL = {"val_size": 10, "test_size": 10}


@pytest.fixture
def dsprites(tmp_path):
    return write_dsprites(tmp_path / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", payload=tmp_path / "ran")


def test_dsprites_factors_come_from_its_labels_colour_left_out_y_fastest(dsprites, tmp_path):
    data = DSpritesDataModule(path=dsprites, cache_dir=tmp_path / "cache", **SMALL)
    assert [f.name for f in data.factors] == ["shape", "scale", "orientation", "x", "y"]
    assert data.factor_sizes == (3, 2, 3, 4, 4)
    assert data.factors[0].values == ("square", "ellipse", "heart")
    assert data.factors[2].values == pytest.approx((0.0, np.pi, 2 * np.pi))
    with np.load(dsprites, allow_pickle=False) as f:
        images, classes = f["imgs"], f["latents_classes"]
    assert torch.equal(data.images_of(classes[:, 1:]).view(-1, 64, 64), torch.from_numpy(images).float())
    assert tuple(data.image_shape) == (1, 64, 64)


def test_dsprites_pickled_metadata_is_never_unpickled(dsprites, tmp_path):
    DSpritesDataModule(path=dsprites, cache_dir=tmp_path / "cache", **SMALL).setup()
    assert not (tmp_path / "ran").exists()  # unpickling the metadata would have created it


def test_shapes3d_factors_come_from_its_labels_orientation_fastest(tmp_path):
    path = write_shapes3d(tmp_path / "3dshapes.h5")
    data = Shapes3DDataModule(path=path, cache_dir=tmp_path / "cache", **SMALL)
    assert [f.name for f in data.factors] == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert data.factor_sizes == (2, 2, 2, 2, 3, 3)
    assert data.factors[5].values == (-30.0, 0.0, 30.0)
    import h5py

    with h5py.File(path, "r") as f:
        images = f["images"][()]
    every = np.stack(np.unravel_index(np.arange(len(images)), data.factor_sizes), axis=1)
    shown = data.images_of(every).view(-1, 3, 64, 64)
    assert torch.equal(shown, torch.from_numpy(images).permute(0, 3, 1, 2).float().div(255))  # channel first
    assert data.groups == ("0.0", "1.0", "2.0")  # by shape


def test_mpi3d_factors_are_the_published_ones_in_their_order(tmp_path):
    path = write_mpi3d(tmp_path / "mpi3d_real.npz")
    data = MPI3DDataModule(variant="real", path=path, factor_sizes=[2, 3, 1, 1, 2, 3, 3], cache_dir=tmp_path / "c",
                           **SMALL)  # fmt: skip
    assert [f.name for f in data.factors][:3] == ["object_color", "object_shape", "object_size"]
    assert data.factors[1].values == ("cone", "cube", "cylinder")
    with np.load(path, allow_pickle=False) as f:
        images = f["images"]
    reshaped = images.reshape(2, 3, 1, 1, 2, 3, 3, 64, 64, 3)  # the publishers' reshape
    assert torch.equal(data.images_of(np.array([[1, 2, 0, 0, 1, 2, 0]])).view(3, 64, 64),
                       torch.from_numpy(reshaped[1, 2, 0, 0, 1, 2, 0]).permute(2, 0, 1).float().div(255))  # fmt: skip


def test_the_images_are_converted_once_into_a_cache_whose_slices_are_the_splits(dsprites, tmp_path):
    cache = tmp_path / "cache"
    data = DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL)
    data.setup()
    (converted,) = cache.glob("*.npy")
    storage = data.grid.untyped_storage().data_ptr()
    assert all(data.splits[s][0].untyped_storage().data_ptr() == storage for s in ("train", "val", "test"))
    stamp = converted.stat().st_mtime_ns
    again = DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL)
    again.setup()
    assert converted.stat().st_mtime_ns == stamp  # read, not written again
    assert torch.equal(again.splits["test"][0], data.splits["test"][0])


def stored(source: Path, path: Path, invert: bool = False) -> Path:
    """``source``'s members re-packed uncompressed into ``path`` (dSprites' stored variant), its images inverted if
    asked: two such files have the same size whatever their pixels."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as new:
        for name in old.namelist():
            data = old.read(name)
            if name == "imgs.npy" and invert:
                buffer = io.BytesIO()
                np.save(buffer, 1 - np.load(io.BytesIO(data), allow_pickle=False))
                data = buffer.getvalue()
            new.writestr(name, data)
    return path


def test_a_file_replaced_with_the_same_size_and_mtime_is_converted_again_and_a_touch_converts_nothing(
    dsprites, tmp_path
):
    path, cache = stored(dsprites, tmp_path / "dsprites.npz"), tmp_path / "cache"
    first = DSpritesDataModule(path=path, cache_dir=cache, **SMALL)
    first.setup()
    (converted,) = cache.glob("*.npy")
    other = stored(dsprites, tmp_path / "other.npz", invert=True)
    stat = path.stat()
    assert other.stat().st_size == stat.st_size
    shutil.copyfile(other, path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # `cp -p`, `rsync -a`: the old size and mtime
    replaced = DSpritesDataModule(path=path, cache_dir=cache, **SMALL)
    replaced.setup()
    assert torch.equal(replaced.splits["test"][0], 255 - first.splits["test"][0])  # the new images, not the old
    (new,) = cache.glob("*.npy")  # the old contents' cache went
    assert new != converted
    stamp = new.stat().st_mtime_ns
    os.utime(path)  # a touch, or a re-download of the same contents
    DSpritesDataModule(path=path, cache_dir=cache, **SMALL).setup()
    assert [c.stat().st_mtime_ns for c in cache.glob("*.npy")] == [stamp]  # the same cache, not converted again


def test_a_ready_cache_on_a_read_only_mount_is_used_as_it_is(dsprites, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(cache)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        written = DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL)
        written.setup()
        subprocess.run(["mount", "-o", "remount,ro", str(cache)], check=True)  # a shared, pre-converted mount
        shared = DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL)
        shared.setup()
        assert torch.equal(shared.splits["test"][0], written.splits["test"][0])
    finally:
        subprocess.run(["umount", "-l", str(cache)], check=True)


def one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def damaged(path, start, length=4096):
    """A copy of ``path`` with ``length`` bytes from ``start`` zeroed, as a broken download leaves it."""
    data = bytearray(path.read_bytes())
    data[start : start + length] = bytes(length)
    bad = path.with_name(f"damaged-{path.name}")
    bad.write_bytes(bytes(data))
    return bad


def test_a_damaged_file_is_one_line_when_converted_and_leaves_no_cache(dsprites, tmp_path):
    with zipfile.ZipFile(dsprites) as archive:
        member = archive.getinfo("imgs.npy")
    bad = damaged(dsprites, member.header_offset + 100 + member.compress_size // 2, 256)  # inside imgs.npy's data
    data = DSpritesDataModule(path=bad, cache_dir=tmp_path / "cache", **SMALL)  # its layout is whole
    with pytest.raises(DataError) as refused:
        data.setup()
    assert one_line(refused).startswith(f"{bad}: its contents are damaged (")
    assert one_line(refused).endswith("); download it again")
    assert list((tmp_path / "cache").iterdir()) == [next((tmp_path / "cache").glob("*.lock"))]  # no cache, no .tmp


def test_a_damaged_compressed_chunk_of_a_3dshapes_file_is_one_line_when_converted(tmp_path):
    import h5py

    whole = write_shapes3d(tmp_path / "whole.h5")
    path = tmp_path / "3dshapes.h5"
    with h5py.File(whole) as source, h5py.File(path, "w") as copy:
        copy.create_dataset("images", data=source["images"][:], chunks=(4, 64, 64, 3), compression="gzip")
        copy["labels"] = source["labels"][:]
        offset = copy["images"].id.get_chunk_info(1).byte_offset
    bad = damaged(path, offset, 64)
    data = Shapes3DDataModule(path=bad, cache_dir=tmp_path / "cache", **SMALL)
    with pytest.raises(DataError) as refused:
        data.setup()
    assert one_line(refused).startswith(f"{bad}: its contents are damaged (")


def test_a_missing_file_names_where_it_was_looked_for_what_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BETAVAE_DATA", str(tmp_path))
    with pytest.raises(DataError) as refused:
        DSpritesDataModule()
    assert one_line(refused).startswith(f"{tmp_path}/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz: no such file;")
    assert "https://github.com/google-deepmind/dsprites-dataset" in str(refused.value)
    with pytest.raises(DataError, match=r"mpi3d_toy\.npz: no such file; .*rr-learning/disentanglement_dataset"):
        MPI3DDataModule()


def test_a_truncated_file_is_refused_before_any_work_in_one_line(dsprites, tmp_path):
    cut = tmp_path / "cut.npz"
    cut.write_bytes(dsprites.read_bytes()[: len(dsprites.read_bytes()) // 2])
    with pytest.raises(DataError) as refused:
        DSpritesDataModule(path=cut, cache_dir=tmp_path / "cache", **SMALL)
    assert one_line(refused).startswith(f"{cut}: truncated or not an .npz")
    broken = tmp_path / "3dshapes.h5"
    broken.write_bytes(write_shapes3d(tmp_path / "whole.h5").read_bytes()[:5000])
    with pytest.raises(DataError, match=rf"^{broken}: truncated or not HDF5"):
        Shapes3DDataModule(path=broken, **SMALL)


def test_a_file_of_another_layout_is_refused_naming_what_it_holds_and_what_was_expected(tmp_path):
    wrong = tmp_path / "other.npz"
    np.savez(wrong, imgs=np.zeros((4, 32, 32), np.uint8), latents_classes=np.zeros((4, 6), np.int64),
             latents_values=np.zeros((4, 6)))  # fmt: skip
    with pytest.raises(DataError) as refused:
        DSpritesDataModule(path=wrong, **SMALL)
    assert one_line(refused).startswith(f"{wrong}: its images are (4, 32, 32); expected [N, 64, 64]")
    keyless = tmp_path / "keyless.npz"
    np.savez(keyless, images=np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(DataError, match=r"it holds no array 'imgs'; expected an \.npz with imgs"):
        DSpritesDataModule(path=keyless, **SMALL)
    shuffled = tmp_path / "shuffled.npz"
    with np.load(write_dsprites(tmp_path / "d.npz"), allow_pickle=False) as f:
        arrays = {k: f[k] for k in ("imgs", "latents_classes", "latents_values")}
    arrays["latents_classes"] = arrays["latents_classes"][::-1].copy()
    np.savez(shuffled, **arrays)
    with pytest.raises(DataError, match="its labels are not every factor combination once in ravel order"):
        DSpritesDataModule(path=shuffled, **SMALL)
    with pytest.raises(DataError, match=r"it holds 108 images; expected 1036800, one per 6 × 6 × 2"):
        MPI3DDataModule(path=write_mpi3d(tmp_path / "mpi3d_toy.npz"), **SMALL)  # the published sizes


def test_a_file_whose_images_end_early_is_one_line_when_converted(tmp_path):
    path = tmp_path / "short.npz"
    header = np.lib.format.header_data_from_array_1_0(np.zeros((100, 64, 64, 3), np.uint8))
    with zipfile.ZipFile(path, "w") as archive, archive.open("images.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(64 * 64 * 3 * 10))  # 10 of the 100 images the header promises
    data = MPI3DDataModule(path=path, factor_sizes=[2, 2, 1, 1, 1, 5, 5], cache_dir=tmp_path / "c", **SMALL)
    with pytest.raises(DataError, match=rf"^{path}: images ends after 8192 rows|^{path}: images ends after 0 rows"):
        data.setup()
    assert not list((tmp_path / "c").glob("*.npy"))  # nothing half written is kept


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "write", "extra"),
    [
        ("dsprites", write_dsprites, ["seed=1", "callbacks=none"]),
        ("shapes3d", write_shapes3d, ["seed=1,2"]),  # colour figures, and UDR over the two seeds
        ("mpi3d", write_mpi3d, ["seed=1", "callbacks=none", "data.factor_sizes=[2,3,1,1,2,3,3]"]),
    ],
)
def test_a_smoke_sweep_on_each_set_gives_every_score_colour_figures_and_udr(tmp_path, name, write, extra):
    path = write(tmp_path / ("file.h5" if name == "shapes3d" else "file.npz"))
    root = tmp_path / "sweep"
    run_module("betavae.train", "-m", f"experiment={name}_smoke", f"data.path={path}",
               f"data.cache_dir={tmp_path / 'cache'}", "fid=none", *extra, f"hydra.sweep.dir={root}")  # fmt: skip
    jobs = sorted(d for d in root.iterdir() if d.is_dir())
    for job in jobs:
        metrics = strict_json(job / "metrics.json")
        scores = ("test/mig", "test/dci_disentanglement", "test/sap", "test/factorvae_score", "test/betavae_score",
                  "test/modularity", "test/explicitness", "test/irs", "test/infomec_m", "test/infomec_e")  # fmt: skip
        for key in scores:
            assert np.isfinite(metrics[key]), key
    summary = json.loads((root / "summary.json").read_text())
    if len(jobs) > 1:
        assert all(j["udr_lasso"] is not None for j in summary["jobs"])
    if name == "shapes3d":  # RGB: the figures are in colour
        import imageio.v3 as iio

        image = iio.imread(jobs[0] / "figures" / "latent_traversal.png")[..., :3].astype(int)
        assert ((image[..., 0] != image[..., 1]) | (image[..., 1] != image[..., 2])).sum() > 100


def test_the_sprites_the_tests_write_are_one_per_factor_combination():
    images = sprite_images((3, 2, 3, 4, 4))
    assert images.shape == (288, 64, 64)
    assert len({image.tobytes() for image in images}) == 288


@pytest.mark.slow
def test_a_moved_file_leaves_its_jobs_out_of_udr_and_evaluate_in_one_line_and_data_path_finds_it(dsprites, tmp_path):
    from betavae.base.config import composed
    from betavae.base.errors import RunError
    from betavae.evaluate import evaluate
    from betavae.summarize import summarize
    from betavae.train import job_config, train

    sweep, cache = tmp_path / "sweep", f"data.cache_dir={tmp_path / 'cache'}"
    for seed in (1, 2):
        train(
            job_config(
                [
                    "experiment=dsprites_smoke",
                    f"data.path={dsprites}",
                    cache,
                    f"seed={seed}",
                    "fid=none",
                    "callbacks=none",
                    "disentanglement=none",
                    *limits(val=1, test=1),
                ],
                sweep / f"seed={seed}",
            )
        )
    moved = dsprites.rename(tmp_path / "elsewhere.npz")
    text, jobs = summarize(composed("summarize", [f"sweep_dir={sweep}"]))
    assert f"- UDR: seed=1 left out: {dsprites}: no such file" in text
    assert not any("udr_lasso" in j for j in jobs)
    few = ["eval.limit=10", "eval.iw_samples=2", "eval.probe=false", "eval.figures=false", "fid=none"]
    with pytest.raises(RunError, match=rf"^1 of 1 runs could not be evaluated: .*seed=1 \({dsprites}: no such file"):
        evaluate(composed("evaluate", [f"run_dir={sweep / 'seed=1'}", *few]))

    _, jobs = summarize(composed("summarize", [f"sweep_dir={sweep}", f"data.path={moved}"]))
    assert all("udr_lasso" in j for j in jobs)
    assert evaluate(composed("evaluate", [f"run_dir={sweep / 'seed=1'}", f"data.path={moved}", *few]))


def test_a_cache_dir_that_is_a_file_and_a_cut_cache_are_one_line_and_a_killed_conversions_file_goes(dsprites, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match=rf"^data.cache_dir={tmp_path}/file: not a folder"):
        DSpritesDataModule(path=dsprites, cache_dir=tmp_path / "file", **SMALL).setup()
    cache = tmp_path / "cache"
    DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL).setup()
    (converted,) = cache.glob("*.npy")
    whole = converted.read_bytes()
    converted.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as refused:
        DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL).setup()
    assert one_line(refused).startswith(f"{converted}: a damaged cache (")
    assert one_line(refused).endswith("delete it to convert the file again")
    converted.unlink()
    (cache / f".{converted.name}.4242.tmp").write_bytes(whole)  # what a conversion SIGKILLed midway leaves
    DSpritesDataModule(path=dsprites, cache_dir=cache, **SMALL).setup()
    assert sorted(p.name for p in cache.iterdir()) == sorted([converted.name, f"{converted.name}.lock", "sources"])


def test_object_labels_an_empty_file_and_a_group_for_images_are_each_one_line(dsprites, tmp_path):
    import h5py

    with np.load(dsprites, allow_pickle=False) as saved:
        arrays = {k: saved[k] for k in ("imgs", "latents_classes", "latents_values")}
    objects = tmp_path / "objects.npz"
    np.savez(objects, **{**arrays, "latents_classes": arrays["latents_classes"].astype(object)})
    with pytest.raises(DataError, match=rf"^{objects}: latents_classes holds Python objects \(dtype object\)"):
        DSpritesDataModule(path=objects, cache_dir=tmp_path / "cache", **SMALL)
    empty = tmp_path / "empty.npz"
    np.savez(empty, **{k: v[:0] for k, v in arrays.items()})
    with pytest.raises(DataError, match=rf"^{empty}: imgs holds no rows"):
        DSpritesDataModule(path=empty, cache_dir=tmp_path / "cache", **SMALL)
    grouped = tmp_path / "3dshapes.h5"
    with h5py.File(write_shapes3d(tmp_path / "whole.h5")) as source, h5py.File(grouped, "w") as copy:
        copy.create_group("images")
        copy["labels"] = source["labels"][:]
    with pytest.raises(DataError, match=rf"^{grouped}: it holds no dataset 'images'"):
        Shapes3DDataModule(path=grouped, **SMALL)
