"""The preprocessing cache on disk, keyed by file content and settings.

- ``geometry/``: the flip and crop box per file (depends on orient/crop/threshold/
  margin only), so changing the size or fit does not redo the breast mask;
- ``images/``: the final model input as float16 .npy (those + size + fit).
Entries are named by the SHA-256 of the file's bytes, so a renamed or copied file
hits and a changed one misses. Hashing every file on every run would read the whole
dataset, so a memo remembers each path's hash together with its size, nanosecond
mtime and inode change time (ctime): a file rewritten in place changes its ctime
even when size and mtime are put back. ``refresh_content_hashes`` recomputes hashes
regardless of the memo (``preprocess --rehash``, ``scan --verify``).

Every file is written atomically; temporary files of killed processes are removed
on the next pass (``clean_leftovers``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from arfl_studio.atomic import remove_stale_temp_files, write_bytes, write_json
from arfl_studio.data.dicom.decode_pool import read_mammogram_isolated
from arfl_studio.data.paths import default_data_dir
from arfl_studio.data.preprocess.geometry import Geometry
from arfl_studio.data.preprocess.transform import preprocess_pixels, stop_if_cancelled

if TYPE_CHECKING:
    from arfl_studio.data.preprocess.settings import PreprocessSettings


def default_cache_dir() -> Path:
    return default_data_dir() / "cache"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_stamp(path: str | os.PathLike) -> tuple[str, list[int]]:
    """(absolute path, [size, mtime_ns, ctime_ns, inode]): what says the file is unchanged."""
    st = os.stat(path)
    return os.path.realpath(path), [int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns), int(st.st_ino)]


class CacheFolderError(ValueError):
    """The cache folder cannot be used (a file has its name, or it cannot be created)."""


class PreprocessCache:
    """Preprocessed images on disk, keyed by file content and settings."""

    INDEX = "content-hashes-v2.json"  # {path: [size, mtime_ns, ctime_ns, inode, sha256]}
    _OLD_INDEXES = ("content-hashes.json",)  # keyed by size and mtime only: not trusted

    def __init__(self, cache_dir: str | os.PathLike):
        self.dir = Path(cache_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise CacheFolderError(
                f"cache_dir {self.dir} is a file, not a folder; name a folder for the preprocessed-image cache"
            ) from None
        except OSError as exc:
            raise CacheFolderError(f"cannot create the cache folder {self.dir}: {exc.strerror or exc}") from None
        self._lock = threading.Lock()
        self._hashes: dict[str, list] = {}
        self._dirty = False
        try:
            loaded = json.loads((self.dir / self.INDEX).read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self._hashes = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 5}
        except (OSError, ValueError):
            self._hashes = {}

    @classmethod
    def worker(cls, cache_dir: str | os.PathLike) -> "PreprocessCache":
        """A cache for one worker process: no memo loaded, nothing saved."""
        cache = cls.__new__(cls)
        cache.dir = Path(cache_dir)
        cache._lock = threading.Lock()
        cache._hashes = {}
        cache._dirty = False
        return cache

    def clean_leftovers(self) -> list[Path]:
        """Remove temporary files of killed processes and the old, untrusted memo."""
        removed = remove_stale_temp_files(self.dir, recursive=True)
        for name in self._OLD_INDEXES:
            old = self.dir / name
            if old.is_file():
                old.unlink()
                removed.append(old)
        return removed

    # ------------------------------------------------------------ content hashes

    def content_hash(self, path: str | os.PathLike) -> str:
        key, stamp = file_stamp(path)
        with self._lock:
            known = self._hashes.get(key)
        if known and known[:4] == stamp:
            return known[4]
        digest = file_sha256(path)
        self.remember(key, stamp, digest)
        return digest

    def remember(self, key: str, stamp: list[int], digest: str) -> None:
        with self._lock:
            entry = [*stamp, digest]
            if self._hashes.get(key) != entry:
                self._hashes[key] = entry
                self._dirty = True

    def rehash(self, paths: Iterable[str | os.PathLike]) -> list[str]:
        """Recompute the hashes of ``paths`` from their bytes; returns those whose
        remembered hash was wrong (content changed behind an unchanged stamp)."""
        changed = []
        for path in paths:
            try:
                key, stamp = file_stamp(path)
                digest = file_sha256(path)
            except OSError:
                continue  # the caller's own read reports unreadable files
            with self._lock:
                known = self._hashes.get(key)
            if known and known[4] != digest:
                changed.append(str(path))
            self.remember(key, stamp, digest)
        return changed

    def save_index(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            data = dict(self._hashes)
            self._dirty = False
        write_json(self.dir / self.INDEX, data)

    # ------------------------------------------------------------ entries

    def image_path(self, digest: str, settings: "PreprocessSettings") -> Path:
        return self.dir / "images" / digest[:2] / f"{digest[:40]}-{settings.image_key()}.npy"

    def geometry_path(self, digest: str, settings: "PreprocessSettings") -> Path:
        return self.dir / "geometry" / digest[:2] / f"{digest[:40]}-{settings.geometry_key()}.json"

    def load_image(self, digest: str, settings: "PreprocessSettings") -> np.ndarray | None:
        path = self.image_path(digest, settings)
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if image.shape != tuple(settings.size):
            return None
        return image

    def store_image(self, digest: str, settings: "PreprocessSettings", image: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(image, dtype=np.float16), allow_pickle=False)
        write_bytes(self.image_path(digest, settings), buffer.getvalue())

    def load_geometry(self, digest: str, settings: "PreprocessSettings") -> Geometry | None:
        try:
            return Geometry.from_dict(json.loads(self.geometry_path(digest, settings).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store_geometry(self, digest: str, settings: "PreprocessSettings", geometry: Geometry) -> None:
        write_json(self.geometry_path(digest, settings), geometry.to_dict())

    def get_or_compute(
        self,
        path: str | os.PathLike,
        settings: "PreprocessSettings",
        digest: str | None = None,
        frame: int | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[np.ndarray, bool]:
        """(image float32 (rows, cols), was_cached). Raises MammogramReadError for a bad file.

        ``frame``: the chosen 1-based frame of a multi-frame file; a given ``digest``
        must then be ``frame_digest(content hash, frame)``. ``cancel``: checked after the
        decode and between the preprocessing steps (``PreprocessCancelled``; nothing is stored).
        """
        digest = digest or frame_digest(self.content_hash(path), frame)
        cached = self.load_image(digest, settings)
        if cached is not None:
            return cached.astype(np.float32), True
        geometry = self.load_geometry(digest, settings)
        stop_if_cancelled(cancel)
        mammogram = read_mammogram_isolated(path, frame=frame)
        image, new_geometry = preprocess_pixels(mammogram.pixels, settings, geometry, cancel, mammogram.pixel_spacing)
        del mammogram
        if geometry is None or geometry != new_geometry:
            self.store_geometry(digest, settings, new_geometry)
        image16 = image.astype(np.float16)
        self.store_image(digest, settings, image16)
        return image16.astype(np.float32), False  # identical to what the next read returns


def frame_digest(digest: str, frame: int | None) -> str:
    """The cache key of one frame of a multi-frame file (the file's own hash for a single frame)."""
    return digest if frame is None else hashlib.sha256(f"{digest}:frame:{frame}".encode()).hexdigest()


def refresh_content_hashes(paths: Iterable[str | os.PathLike], cache_dir: str | os.PathLike | None = None) -> list[str]:
    """Recompute the remembered content hashes of ``paths`` from their bytes and save
    them; returns the paths whose content had changed without the memo noticing.
    For ``scan --verify`` and ``preprocess --rehash``."""
    cache = PreprocessCache(cache_dir if cache_dir is not None else default_cache_dir())
    changed = cache.rehash(paths)
    cache.save_index()
    return changed
