"""What the tests share: the presets of a small job's overrides, runs of the entry points (in this process),
files written as the real ones are, and readers of what a run wrote. Test modules import from here, never from
each other."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import gzip
import io
import json
import logging
import os
import runpy
import signal
import socket
import struct
import subprocess
import sys
import time
import traceback
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir

from betavae.data.idx import IMAGE_MAGIC, LABEL_MAGIC

REPO = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray, magic: int) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in .gz)."""
    data = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def write_split(directory: Path, images: int = 4, gz: bool = True) -> None:
    """Write all four IDX files with ``images`` random images each (valid format, wrong counts)."""
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        pixels = rng.integers(0, 256, (images, 28, 28))
        write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", pixels, IMAGE_MAGIC)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, images), LABEL_MAGIC)


def sprite_images(sizes: tuple[int, ...], image_size: int = 64) -> np.ndarray:
    """Binary sprites [N, S, S] (0/1) of every combination of shape, scale, orientation (a full turn), x and y
    (the ``sizes`` of each, in that order): dSprites' images at a small scale, rendered as the shapes data is."""
    from betavae.data.shapes import grid_factors, render

    shapes, scales, orientations, xs, ys = sizes
    assert xs == ys, "one number of positions for x and y"
    return render(image_size, grid_factors(image_size, shapes, scales, orientations, 360.0, xs)) // 255


def write_dsprites(path: Path, sizes: tuple[int, ...] = (3, 2, 3, 4, 4), payload: Path | None = None) -> Path:
    """A file in dSprites' exact layout (an .npz of imgs uint8 [N, 64, 64] 0/1, latents_classes int64 [N, 6] and
    latents_values float64 [N, 6], y fastest, and a pickled `metadata`, here one that creates ``payload`` if it is
    ever unpickled), with ``sizes`` values of shape, scale, orientation, x and y."""
    full = (1, *sizes)
    classes = np.stack(np.unravel_index(np.arange(int(np.prod(full))), full), axis=1).astype(np.int64)
    ranges = [np.ones(1), np.arange(1.0, 4.0)[: sizes[0]], np.linspace(0.5, 1, sizes[1]),
              np.linspace(0, 2 * np.pi, sizes[2]), np.linspace(0, 1, sizes[3]),
              np.linspace(0, 1, sizes[4])]  # fmt: skip
    values = np.stack([ranges[k][classes[:, k]] for k in range(6)], axis=1)
    metadata = np.array(Payload(payload) if payload else {"title": "dSprites"}, dtype=object)
    np.savez_compressed(path, imgs=sprite_images(sizes).astype(np.uint8), latents_classes=classes,
                        latents_values=values, metadata=metadata)  # fmt: skip
    return path


def coloured(images: np.ndarray, seed: int) -> np.ndarray:
    """Binary images [N, S, S] as RGB uint8 [N, S, S, 3], each in a colour drawn from ``seed``."""
    colours = np.random.default_rng(seed).integers(64, 256, size=(len(images), 3), dtype=np.uint8)
    return images[..., None].astype(np.uint8) * colours[:, None, None, :]


def write_shapes3d(path: Path, sizes: tuple[int, ...] = (2, 2, 2, 2, 3, 3)) -> Path:
    """A file in 3D Shapes' exact layout (HDF5: images uint8 [N, 64, 64, 3], labels float64 [N, 6], orientation
    fastest), with ``sizes`` values of floor hue, wall hue, object hue, scale, shape and orientation: a sprite per
    (shape, scale, orientation) coloured by the three hues."""
    import h5py

    classes = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    ranges = [np.linspace(0, 0.9, sizes[0]), np.linspace(0, 0.9, sizes[1]), np.linspace(0, 0.9, sizes[2]),
              np.linspace(0.75, 1.25, sizes[3]), np.arange(sizes[4], dtype=float),
              np.linspace(-30, 30, sizes[5])]  # fmt: skip
    sprites = sprite_images((sizes[4], sizes[3], sizes[5], 4, 4)).reshape(sizes[4], sizes[3], sizes[5], 16, 64, 64)
    images = np.empty((len(classes), 64, 64, 3), dtype=np.uint8)
    for i, (floor, wall, hue, scale, shape, angle) in enumerate(classes):
        sprite = sprites[shape, scale, angle, 5].astype(np.uint8)
        images[i] = sprite[..., None] * np.uint8(100 + 70 * hue) + (1 - sprite[..., None]) * np.array(
            [40 + 100 * floor, 40 + 100 * wall, 60], dtype=np.uint8)  # fmt: skip
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = np.stack([ranges[k][classes[:, k]] for k in range(6)], axis=1)
    return path


def write_mpi3d(path: Path, sizes: tuple[int, ...] = (2, 3, 1, 1, 2, 3, 3)) -> Path:
    """A file in MPI3D's exact layout (an .npz of images uint8 [N, 64, 64, 3], no labels, the factors in the
    published order, the last fastest), with ``sizes`` values of each: a sprite per (shape, horizontal, vertical)
    position, coloured by object and background colour."""
    classes = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    sprites = sprite_images((sizes[1], 1, 1, 8, 8))
    images = np.empty((len(classes), 64, 64, 3), dtype=np.uint8)
    for i, (colour, shape, size, height, background, h, v) in enumerate(classes):
        sprite = sprites[shape * 64 + (h * 2) * 8 + v * 2].astype(np.uint8)[..., None]
        images[i] = sprite * np.array([80 * colour + 60, 200, 50 + 60 * size], dtype=np.uint8) + (1 - sprite) * (
            np.array([30 + 90 * background, 40 + 50 * height, 90], dtype=np.uint8))  # fmt: skip
    np.savez_compressed(path, images=images)
    return path


class Payload:
    """Pickles into a call that would create a file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def run_module(*args: str, cwd: Path | None = None, check: bool = True, without: str | None = None,
               ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``python -m <args>`` in this process, as the interpreter runs it (runpy, `__main__`, its argv, working
    directory, stdout and stderr; an uncaught SystemExit or exception is its exit status), and return its result
    as subprocess.run gives it. ``without``: a package this run finds uninstalled (importing it fails)."""
    out, err = io.StringIO(), io.StringIO()
    saved = Process.save()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings(), \
                uninstalled(without):  # fmt: skip
            os.chdir(cwd or REPO)
            sys.argv = list(args)
            warnings.showwarning = print_warning  # to the run's stderr, as the interpreter shows them
            code = exit_status(lambda: runpy.run_module(args[0], run_name="__main__", alter_sys=True))
    finally:
        saved.restore()
    return checked(subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue()), check)


@contextlib.contextmanager
def uninstalled(package: str | None) -> Iterator[None]:
    """While the block runs, importing ``package`` fails as where it is not installed; then it is as it was (the
    module itself where it had been imported, so nothing imports it twice)."""
    if package is None:
        yield
        return
    before = sys.modules.get(package)
    sys.modules[package] = None  # the import system's "not importable" marker
    try:
        yield
    finally:
        if before is None:
            del sys.modules[package]
        else:
            sys.modules[package] = before


def checked(result: subprocess.CompletedProcess[str], check: bool) -> subprocess.CompletedProcess[str]:
    """``result``, or AssertionError with the ends of its output where ``check`` and it exited non-zero."""
    if check and result.returncode != 0:
        raise AssertionError(f"{result.args} exited {result.returncode}\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-5000:]}")  # fmt: skip
    return result


def run_process(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` as a real process of its own (DDP's launcher re-runs its command line), text output."""
    return checked(subprocess.run([sys.executable, "-m", *args], cwd=cwd or REPO, capture_output=True, text=True),
                   check)  # fmt: skip


def start_module(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start ``python -m <args>`` as a real process of its own (a test that signals or kills it), output piped."""
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd or REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a warning as the interpreter does: on stderr."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def exit_status(run: Callable[[], object]) -> int:
    """The status `python -m` exits with after ``run``: SystemExit's (its message printed to stderr as the
    interpreter prints it), 1 after an uncaught exception (its traceback printed), else 0."""
    try:
        run()
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc()
        return 1
    return 0


@dataclasses.dataclass
class Process:
    """What a run in this process may change and the next test must find as it was: the working directory, argv,
    the logging setup (Hydra configures it per job) and the environment."""

    cwd: str
    argv: list[str]
    environ: dict
    handlers: dict
    levels: dict

    @classmethod
    def save(cls) -> Process:
        loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                          if isinstance(lg, logging.Logger))]  # fmt: skip
        return cls(os.getcwd(), sys.argv[:], dict(os.environ),
                   {lg.name: lg.handlers[:] for lg in loggers},
                   {lg.name: (lg.level, lg.propagate, lg.disabled) for lg in loggers})  # fmt: skip

    def restore(self) -> None:
        os.chdir(self.cwd)
        sys.argv[:] = self.argv
        os.environ.clear()
        os.environ.update(self.environ)
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            if isinstance(logger, logging.Logger):
                logger.handlers[:] = self.handlers.get(logger.name, [])
                logger.level, logger.propagate, logger.disabled = self.levels.get(logger.name, (0, True, False))


TESTS_CONF = f"hydra.searchpath=[file://{REPO}/tests/conf]"  # the tests' own configs: data=rgb_shapes, toy=default
WITHOUT_FIGURES = ["callbacks=none", "fid=none"]  # checkpoints and the progress bar only: no figure, metric or FID
# The latent statistics alone (val/active_units, and at the test pass the `latents` family), without the probe's
# regressions on 55,000 training codes (8 s a job) or FID.
LATENT_STATS_ONLY = ["callbacks=[checkpoint,timer,progress_bar,latent_stats]", "callbacks.latent_stats.probe=false",
                     "fid=none"]  # fmt: skip
# `python -m betavae.evaluate` on 20 test images with 5 importance samples, without FID, figures or the probe.
EVALUATE_FEW = ["eval.limit=20", "eval.iw_samples=5", "eval.probe=false", "eval.figures=false", "fid=none"]


def limits(train: int | None = None, val: int | None = None, test: int | None = None) -> list[str]:
    """trainer.limit_<stage>_batches=N for each stage given: a job of a few batches."""
    given = {"train": train, "val": val, "test": test}
    return [f"trainer.limit_{stage}_batches={n}" for stage, n in given.items() if n is not None]


def train_job(run: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """`python -m betavae.train` into ``run`` without figures, two test batches and (unless ``overrides`` set
    it) two validation batches."""
    if not any(o.startswith("trainer.limit_val_batches=") for o in overrides):
        overrides = (*overrides, *limits(val=2))
    return run_module("betavae.train", *limits(test=2), *WITHOUT_FIGURES, *overrides, f"hydra.run.dir={run}",
                      check=check)  # fmt: skip


def compose_config(name: str, *overrides: str, hydra: bool = False):
    """The composed config `name` (train, evaluate, ...), as its entry point would see it (with the `hydra` key
    if asked), interpolations unresolved: a copy of its one composition in this process."""
    return copy.deepcopy(composition(name, overrides, hydra))


@functools.cache
def composition(name: str, overrides: tuple[str, ...], hydra: bool):
    """Hydra's composition of `name` with ``overrides``: 0.15 s each on this project's 2-core machine, and the
    tests ask for the same ones again (the plain train config 27 times in the unit tests)."""
    with initialize_config_dir(str(REPO / "betavae" / "conf"), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=hydra)


def compose_train(*overrides: str):
    """The composed `train` config, as `python -m betavae.train` would see it."""
    return compose_config("train", *overrides)


def started_run(run: Path, *overrides: str) -> Path:
    """A run directory whose experiment was started with ``overrides`` (its config and one checkpoint)."""
    from omegaconf import OmegaConf

    from betavae.runs.continuation import record_part

    hydra_cfg = OmegaConf.create({"overrides": {"task": list(overrides)}})
    record_part(run, compose_train(*overrides), hydra_cfg, {})
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    return run


def strict_json(path: Path):
    """The file parsed as strict JSON: NaN and Infinity literals raise."""

    def refuse(name):
        raise ValueError(f"{path}: non-standard JSON constant {name}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def scalars(job_dir: Path):
    """A job's TensorBoard run read with tensorboard's own reader, and all its scalar series by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(job_dir) / "tensorboard"))
    events.Reload()
    return events, {tag: events.Scalars(tag) for tag in events.Tags()["scalars"]}


class MlflowServer:
    """A real `mlflow server` on a free port of 127.0.0.1, with its own SQLite store and artifact directory under
    ``store``, which a test can kill and start again (the same port and store)."""

    def __init__(self, store: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.store, self.uri, self.process = Path(store), f"http://127.0.0.1:{self.port}", None

    def start(self) -> MlflowServer:
        """Start the server and wait until it answers (120 s at most)."""
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", "1", "--backend-store-uri", f"sqlite:///{self.store}/db",
                   "--artifacts-destination", str(self.store)]  # fmt: skip
        # without MLflow 3's job runners (a Huey consumer per job kind, 7 s of CPU each at start): no test uses them
        environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                                        start_new_session=True)  # fmt: skip  # a group: its workers die with it
        deadline = time.monotonic() + 120
        try:
            while True:
                try:
                    urllib.request.urlopen(f"{self.uri}/health", timeout=2)
                    return self
                except OSError:
                    assert self.process.poll() is None, "mlflow server exited before it answered"
                    assert time.monotonic() < deadline, "mlflow server did not answer within 120 s"
                    time.sleep(0.5)
        except BaseException:
            self.kill()  # on every way out: no server left behind
            raise

    def kill(self) -> None:
        """SIGKILL the server and every process it started (uvicorn, its job runners) and wait for it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
