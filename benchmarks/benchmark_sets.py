"""What dSprites, 3D Shapes and MPI3D cost here, on generated files of their real size in their published layouts
(the real files cannot be downloaded on this project's machines): `python benchmarks/benchmark_sets.py <dir>
[--sets dsprites,shapes3d,mpi3d] [--steps 60]`.

For each set, each step in a process of its own: write the file (sprites of every factor combination, coloured
for the RGB sets), convert it into the cache (`data.setup()`, timed, with the process's peak resident memory),
set it up again from the cache, and time `--steps` training steps of `experiment=<set>`'s network (batch 64,
one torch thread per job, as a sweep of two jobs has) to give an epoch's time. Prints a Markdown table;
deletes each set's files after it."""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FILES = {"dsprites": "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", "shapes3d": "3dshapes.h5",
         "mpi3d": "mpi3d_real.npz"}  # fmt: skip


def sprites(sizes: tuple[int, ...]) -> np.ndarray:
    """Binary 64×64 sprites [N, 64, 64] of every (shape, scale, orientation, x, y) combination, dSprites' order."""
    sys.path.insert(0, str(REPO))
    from betavae.data.shapes import grid_factors, render

    shapes, scales, orientations, xs, _ = sizes
    return render(64, grid_factors(64, shapes, scales, orientations, 360.0, xs)) // 255


def write_npy_member(archive: zipfile.ZipFile, name: str, shape: tuple[int, ...], chunks) -> None:
    """An uint8 array streamed into an .npz member, a chunk at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=np.uint8).tobytes())


def write(name: str, path: Path) -> None:
    """A file of the set's real size in its published layout."""
    if name == "dsprites":
        sizes = (1, 3, 6, 40, 32, 32)
        classes = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1).astype(np.int64)
        values = classes.astype(np.float64)
        np.savez_compressed(path, imgs=sprites(sizes[1:]).astype(np.uint8), latents_classes=classes,
                            latents_values=values, metadata=np.array({"title": "generated"}, dtype=object))  # fmt: skip
    elif name == "shapes3d":
        import h5py

        sizes = (10, 10, 10, 8, 4, 15)
        base = sprites((3, 8, 15, 1, 1))  # [shape, scale, orientation] sprites (4 shapes drawn with the 3 we have)
        labels = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1).astype(np.float64)
        with h5py.File(path, "w") as f:
            images = f.create_dataset("images", (len(labels), 64, 64, 3), dtype=np.uint8)
            for start in range(0, len(labels), 12_000):
                rows = labels[start : start + 12_000].astype(int)
                sprite = base[((rows[:, 4] % 3) * 8 + rows[:, 3]) * 15 + rows[:, 5]][..., None]
                colour = np.stack([25 * rows[:, 0], 25 * rows[:, 1], 25 * rows[:, 2]], axis=1)[:, None, None, :]
                images[start : start + len(rows)] = (sprite * (colour + 20) + (1 - sprite) * 60).astype(np.uint8)
            f["labels"] = labels
    else:
        sizes = (6, 6, 2, 3, 3, 40, 40)
        base = sprites((3, 2, 1, 32, 32))  # [shape, size, x, y] sprites as the object (positions wrap past 32)

        def chunks():
            total = int(np.prod(sizes))
            for start in range(0, total, 14_400):
                rows = np.stack(np.unravel_index(np.arange(start, min(total, start + 14_400)), sizes), axis=1)
                index = (((rows[:, 1] % 3) * 2 + rows[:, 2]) * 32 + rows[:, 5] % 32) * 32 + rows[:, 6] % 32
                sprite = base[index][..., None]
                colour = np.stack([40 * rows[:, 0] + 30, 200 - 30 * rows[:, 0], 60 + 20 * rows[:, 3]], 1)
                background = (50 * rows[:, 4] + 20 * rows[:, 3])[:, None, None, None]
                yield sprite * colour[:, None, None, :] + (1 - sprite) * background  # [n, 64, 64, 3]

        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            write_npy_member(archive, "images", (int(np.prod(sizes)), 64, 64, 3), chunks())


def setup(name: str, path: Path, cache: Path) -> dict[str, float]:
    """The data module set up (converting or reading the cache): seconds and the process's peak memory."""
    sys.path.insert(0, str(REPO))
    from betavae.data import DSpritesDataModule, MPI3DDataModule, Shapes3DDataModule

    module = {"dsprites": DSpritesDataModule, "shapes3d": Shapes3DDataModule, "mpi3d": MPI3DDataModule}[name]
    start = time.perf_counter()
    data = module(path=path, cache_dir=cache, **({"variant": "real"} if name == "mpi3d" else {}))
    data.setup()
    _ = data.images("test")  # what the test pass and the figures take
    return {"seconds": time.perf_counter() - start, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "train": data.size("train")}  # fmt: skip


def steps(name: str, path: Path, cache: Path, count: int) -> dict[str, float]:
    """Seconds per training step of experiment=<name>'s network at batch 64 on one thread, from the cache."""
    sys.path.insert(0, str(REPO))
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    torch.set_num_threads(1)
    with initialize_config_dir(str(REPO / "betavae" / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}", f"data.path={path}", f"data.cache_dir={cache}"])
    data, module = instantiate(cfg.data), instantiate(cfg.model)
    data.setup()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    batches = iter(data.train_dataloader())
    times = []
    for _ in range(count + 5):
        x, _ = next(batches)
        start = time.perf_counter()
        mu, logvar = module.net.encode(x)
        logits = module.net.decode(module.net.reparameterize(mu, logvar))
        loss = module.net.nll(logits, x).mean() + 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return {"step_s": float(np.median(times[5:])), "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}


def child(args: list[str]) -> dict:
    """A step in a process of its own."""
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, nargs="?")  # absent in a child step
    parser.add_argument("--sets", default="dsprites,shapes3d,mpi3d")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, name, path, cache, *rest = args.child
        if step == "write":
            write(name, Path(path))
            print(json.dumps({}))
        elif step == "setup":
            print(json.dumps(setup(name, Path(path), Path(cache))))
        else:
            print(json.dumps(steps(name, Path(path), Path(cache), int(rest[0]))))
        return
    print("| set | file written (s) | file (GB) | converted (s) | peak memory converting (GB) | from the cache (s) | "
          "peak (GB) | s / step, batch 64, 1 thread | epoch (min) | training peak (GB) |")  # fmt: skip
    print("|" + " --- |" * 10)
    for name in args.sets.split(","):
        work = args.dir / name
        work.mkdir(parents=True, exist_ok=True)
        path, cache = work / FILES[name], work / "cache"
        start = time.perf_counter()
        child(["write", name, str(path), str(cache)])
        written = time.perf_counter() - start
        first, again = child(["setup", name, str(path), str(cache)]), child(["setup", name, str(path), str(cache)])
        trained = child(["steps", name, str(path), str(cache), str(args.steps)])
        epoch_min = trained["step_s"] * first["train"] / 64 / 60
        print(f"| {name} | {written:.0f} | {path.stat().st_size / 1e9:.2f} | {first['seconds']:.0f} | "
              f"{first['peak_gb']:.1f} | {again['seconds']:.1f} | {again['peak_gb']:.1f} | {trained['step_s']:.3f} | "
              f"{epoch_min:.0f} | {trained['peak_gb']:.1f} |", flush=True)  # fmt: skip
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
