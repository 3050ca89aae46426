"""The field's benchmark files from the user's own copy (dSprites, 3D Shapes, MPI3D): found where the user says, each
checked against its published layout before any work (a missing, truncated or wrong-layout file is one line
naming it, what was expected and where to get it), and its images converted once into a cache: uint8, channel
first, in the order of the data module's split, memory-mapped, so a set larger than memory trains and its splits
are slices of one file. Nothing is ever unpickled (`allow_pickle=False`)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from betavae.base.errors import DataError, first_line
from betavae.base.files import atomic, cache_path, disk_full

log = logging.getLogger(__name__)
CACHE_VERSION = 2  # of the cache's layout and naming: a new one converts again (2: named by the contents)
CHUNK = 8192  # images read and written at a time


@dataclass(frozen=True)
class Published:
    """A benchmark file as its publishers describe it: its name, where to get it, its image count and shape."""

    file: str
    page: str
    images: int
    shape: tuple[int, ...]  # per image, as stored: (64, 64) or (64, 64, 3)

    def refused(self, path: Path, problem: str, expected: str) -> DataError:
        """The one line for a file that is not this one: what is wrong, what was expected, where to get it."""
        return DataError(f"{path}: {problem}; expected {expected} ({self.file}, from {self.page})")


def located(given: str | os.PathLike | None, published: Published) -> Path:
    """The file to read: ``given`` (data.path), else ``$BETAVAE_DATA/<file>``, else ``~/.cache/betavae/<file>``;
    DataError in one line, naming every place looked, where it is in none."""
    path = cache_path("BETAVAE_DATA", published.file, given=given)
    if not path.is_file():
        raise published.refused(path, "no such file", "the publishers' file there, or data.path=<your copy>")
    return path


def read_header(f: object) -> tuple[tuple[int, ...], bool, np.dtype]:
    """An .npy stream's (shape, fortran order, dtype), the stream left at the first byte of data."""
    version = np.lib.format.read_magic(f)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return reader(f)


class NpyMember:
    """One array of an .npz file, read as it is stored: its header at once, its rows streamed (the member is
    decompressed as it is read, never whole into memory). Nothing in it is unpickled."""

    def __init__(self, path: Path, name: str, published: Published) -> None:
        self.path, self.name, self.published = path, name, published
        try:
            with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as f:
                self.shape, fortran, self.dtype = read_header(f)
        except KeyError:
            raise published.refused(path, f"it holds no array {name!r}", f"an .npz with {name}") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise published.refused(path, f"truncated or not an .npz ({err})", "a whole .npz file") from None
        if fortran:
            raise published.refused(path, f"{name} is stored in Fortran order", "C order, as the publishers wrote it")
        if self.dtype.hasobject:  # reading it would unpickle: never
            raise published.refused(path, f"{name} holds Python objects (dtype object)", "numbers, as published")
        if not self.shape or self.shape[0] == 0:
            raise published.refused(path, f"{name} holds no rows", "the whole file")

    def rows(self, chunk: int = CHUNK) -> Iterator[np.ndarray]:
        """The array's rows in file order, ``chunk`` at a time."""
        row_bytes = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        with zipfile.ZipFile(self.path) as archive, archive.open(f"{self.name}.npy") as f:
            read_header(f)
            for start in range(0, self.shape[0], chunk):
                count = min(chunk, self.shape[0] - start)
                data = f.read(count * row_bytes)
                if len(data) != count * row_bytes:
                    raise self.published.refused(self.path, f"{self.name} ends after {start} rows", "the whole file")
                yield np.frombuffer(data, dtype=self.dtype).reshape(count, *self.shape[1:])

    def load(self) -> np.ndarray:
        """The whole array (a small one: labels), without pickles."""
        with np.load(self.path, allow_pickle=False) as archive:
            return archive[self.name]


def check_images(member_shape: tuple[int, ...], dtype: np.dtype, path: Path, published: Published) -> None:
    """Refuse, in one line, images of another shape or type than the publishers'."""
    if member_shape and member_shape[0] == 0:
        raise published.refused(path, "it holds no images", f"{published.images:,} images")
    if len(member_shape) != 1 + len(published.shape) or tuple(member_shape[1:]) != published.shape:
        raise published.refused(path, f"its images are {tuple(member_shape)}",
                                f"[N, {', '.join(map(str, published.shape))}]")  # fmt: skip
    if dtype != np.uint8:
        raise published.refused(path, f"its images are {dtype}", "uint8")


def check_grid_order(indices: np.ndarray, sizes: tuple[int, ...], path: Path, published: Published) -> None:
    """Refuse labels whose rows are not every factor combination once, in ravel order (the last factor fastest)."""
    expected = np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)
    if indices.shape != expected.shape or not np.array_equal(indices, expected):
        raise published.refused(path, "its labels are not every factor combination once in ravel order",
                                f"the factor grid {' × '.join(map(str, sizes))}, the last factor fastest")  # fmt: skip


def settings_key(*settings: object) -> str:
    """A short hash of what orders a cache besides the file's contents (the layout's version, the split seed)."""
    return hashlib.sha256("|".join(map(str, (CACHE_VERSION, *settings))).encode()).hexdigest()[:16]


def content_digest(path: Path) -> str:
    """The file's SHA-256, read in 8 MiB blocks: 1.1 GB/s here (1 GB in 0.9 s, cached), so a 12.7 GB MPI3D file takes
    about 12 s, once per copy, or as long as the disk takes to read it."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 23):
            digest.update(block)
    return digest.hexdigest()


class Sources:
    """Which contents each file the caches were made from holds, under ``directory``/sources: a record per file
    identity (its path, size, modification and change times and inode: a copy made with `cp -p` or `rsync -a` has
    the old size and mtime but never the old ctime and inode), so a file's contents are hashed once per identity,
    and a cache is named by the contents, not by what the file system says of them."""

    def __init__(self, directory: Path, file: Path) -> None:
        stat, self.file, self.path = file.stat(), file, str(file.resolve())
        identity = "|".join(map(str, (self.path, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)))
        self.folder = directory / "sources"
        self.record = self.folder / f"{hashlib.sha256(identity.encode()).hexdigest()[:16]}.json"

    def digest(self) -> str:
        """The file's content digest: recorded for this identity, else hashed now."""
        try:
            found = json.loads(self.record.read_text())
            if found.get("path") == self.path and isinstance(found.get("digest"), str):
                return found["digest"]
        except (OSError, ValueError, AttributeError):
            pass
        start = time.perf_counter()
        digest = content_digest(self.file)
        log.info("%s: contents hashed (%.1f s) to find its cache", self.file, time.perf_counter() - start)
        return digest

    def remember(self, digest: str) -> None:
        """Record this identity's digest (not where the cache folder is read-only: it is hashed again next time)."""
        try:
            self.folder.mkdir(exist_ok=True)
            with atomic(self.record) as tmp:
                tmp.write_text(json.dumps({"path": self.path, "digest": digest}))
        except OSError:
            log.debug("%s: not writable; the file's digest is not recorded", self.folder)

    def forget_others(self, keep: str) -> list[str]:
        """Remove the records of this path's earlier identities (a re-download, a touch, a replaced file); return
        the digests no record names any more, whose caches are stale."""
        records = {}
        for other in self.folder.glob("*.json"):
            try:
                records[other] = json.loads(other.read_text())
            except (OSError, ValueError):
                continue
        earlier = {other for other, found in records.items() if other != self.record and found.get("path") == self.path}
        for other in earlier:
            other.unlink(missing_ok=True)
        gone = {records[other].get("digest") for other in earlier}
        named = {found.get("digest") for other, found in records.items() if other not in earlier}
        return sorted(d for d in gone - named - {keep} if isinstance(d, str))


def write_in_order(path: Path, shape: tuple[int, ...], rows: Iterator[np.ndarray], positions: np.ndarray) -> None:
    """An .npy file of uint8 ``shape``, the g-th image ``rows`` yields at row ``positions[g]``, written image by image
    at its offset: no map of the whole file is held, so the process stays small while a large set converts."""
    row_bytes = int(np.prod(shape[1:]))
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, header)
        offset = f.tell()
        f.truncate(offset + shape[0] * row_bytes)
        done = 0
        for chunk in rows:
            flat = np.ascontiguousarray(chunk, dtype=np.uint8).reshape(len(chunk), row_bytes)
            for k, row in enumerate(flat):
                os.pwrite(f.fileno(), row, offset + int(positions[done + k]) * row_bytes)
            done += len(chunk)
    if done != shape[0]:
        raise DataError(f"{path}: {done} images converted, {shape[0]} expected")


def read_whole(path: Path, rows: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """``rows``, with a read that finds the file's contents damaged (a broken download: a bad CRC, a chunk that
    does not decompress) turned into one line naming the file; its layout was checked before any work."""
    try:
        yield from rows
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:  # the system's (a full disk), not the file's contents
            raise
        raise DataError(f"{path}: its contents are damaged ({first_line(err)}); download it again") from None


def cached(path: Path, shape: tuple[int, ...], rows: Callable[[], Iterator[np.ndarray]], positions: np.ndarray,
           settings: tuple[object, ...], cache_dir: str | os.PathLike | None = None) -> torch.Tensor:  # fmt: skip
    """The images of ``path`` as uint8 [N, C, H, W], image g (the g-th that ``rows`` yields, already channel
    first) at row ``positions[g]``: a cache under ``cache_dir`` (null: $BETAVAE_CACHE/datasets or
    ~/.cache/betavae/datasets) named by the file's contents and ``settings``, written once, under a file lock so a
    sweep's jobs do not write it together, then memory-mapped (copy on write: nothing writes back). Converting
    removes the caches of the same file's earlier contents."""
    directory = cache_path("BETAVAE_CACHE", "datasets", given=cache_dir)
    if directory.exists() and not directory.is_dir():
        raise DataError(f"data.cache_dir={directory}: not a folder; give a folder for the converted images")
    sources = Sources(directory, path)
    digest = sources.digest()
    target = directory / f"{path.stem}-{digest[:16]}-{settings_key(*settings)}.npy"
    if target.is_file():  # ready (written whole, then renamed): read as it is, also from a read-only mount
        if not sources.record.is_file():
            sources.remember(digest)
        return mapped(target, shape)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f"{target.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            for stale in directory.glob(f".{target.name}.*.tmp"):  # a conversion killed midway: none runs now
                stale.unlink()
            needed = int(np.prod(shape))
            if shutil.disk_usage(directory).free < needed:
                raise disk_full(target, needed)
            start = time.perf_counter()
            with atomic(target) as tmp:
                write_in_order(tmp, shape, read_whole(path, rows()), positions)
            log.info("%s: converted once into %s (%.1f GB, %.0f s)", path, target, needed / 1e9,
                     time.perf_counter() - start)  # fmt: skip
    sources.remember(digest)
    for old in sources.forget_others(keep=digest):
        for stale in directory.glob(f"{path.stem}-{old[:16]}-*.npy"):
            stale.unlink(missing_ok=True)  # a job still reading it keeps its map: the file goes when it closes
            log.info("%s: removed, a cache of %s's earlier contents", stale, path)
    return mapped(target, shape)


def mapped(target: Path, shape: tuple[int, ...]) -> torch.Tensor:
    """The cache's images, memory-mapped copy-on-write; a cache cut short or of another shape is one line."""
    try:
        images = np.load(target, mmap_mode="c")
    except (ValueError, OSError) as err:  # numpy's: a header or data shorter than it says
        raise DataError(f"{target}: a damaged cache ({first_line(err)}); delete it to convert the file again") from None
    if images.shape != shape or images.dtype != np.uint8:
        raise DataError(f"{target}: a cache of {images.dtype} {images.shape}, not uint8 {shape}; delete it to convert "
                        "the file again")  # fmt: skip
    return torch.from_numpy(images)
