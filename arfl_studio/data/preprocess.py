"""Preprocessing for training, the on-disk cache, and the torch Dataset.

Steps, each a setting (``PreprocessSettings``):
1. decode (``read_mammogram``: float32 [0, 1], tissue bright);
2. ``orient``: flip left-right so every breast's chest wall is on the left (decided
   from the image itself, the side holding more tissue, not from tags);
3. ``crop``: "otsu" (Otsu threshold) or "threshold" (fixed ``threshold``), then the
   largest connected component's bounding box plus a small margin; "none" keeps all;
4. resize to ``size`` (rows, columns), antialiased (Gaussian prefilter + bilinear);
5. ``channels``: 1, or 3 (replicated, for ImageNet backbones) at load time.

Cache (``cache_dir``): keyed by the SHA-256 of the file's bytes and the settings
that matter for each stage:
- ``geometry/``: the flip and crop box (depends on orient/crop/threshold only), so
  changing the size does not redo Otsu and component labelling;
- ``images/``: the final resized image as float16 .npy (depends on those + size).
``channels`` is applied when loading and never invalidates anything. Decoded
pixels are not cached at full resolution (a 3328x2560 image would take 34 MB).
Every file is written atomically. A memo of (path, size, mtime) -> hash avoids
re-reading unchanged files to hash them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from arfl_studio.atomic import write_bytes, write_json
from arfl_studio.data.dicom import MammogramReadError, read_mammogram
from arfl_studio.data.geometry import Geometry

PREPROCESS_VERSION = 1
CROP_METHODS = ("otsu", "threshold", "none")


class PreprocessSettingError(ValueError):
    """An invalid preprocessing setting; the message names it and what is allowed."""


@dataclass(frozen=True)
class PreprocessSettings:
    orient: bool = True
    crop: str = "otsu"  # "otsu" | "threshold" | "none"
    size: tuple[int, int] = (224, 224)  # rows, columns
    channels: int = 3  # 1 or 3
    threshold: float = 0.1  # for crop="threshold", in display units [0, 1]
    margin: float = 0.02  # crop margin, fraction of the image size

    def __post_init__(self) -> None:
        size = self.size
        if isinstance(size, (int, np.integer)):
            size = (int(size), int(size))
        size = tuple(int(s) for s in size)
        object.__setattr__(self, "size", size)
        self.validate()

    def validate(self) -> "PreprocessSettings":
        if self.crop not in CROP_METHODS:
            raise PreprocessSettingError(f"crop must be one of {', '.join(CROP_METHODS)}, not {self.crop!r}")
        if len(self.size) != 2 or not all(8 <= s <= 8192 for s in self.size):
            raise PreprocessSettingError(f"size must be (rows, columns), each 8..8192, not {self.size}")
        if self.channels not in (1, 3):
            raise PreprocessSettingError(f"channels must be 1 or 3, not {self.channels}")
        if not 0.0 <= self.threshold < 1.0:
            raise PreprocessSettingError(f"threshold must be in [0, 1), not {self.threshold}")
        if not 0.0 <= self.margin <= 0.25:
            raise PreprocessSettingError(f"margin must be in [0, 0.25], not {self.margin}")
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSettings":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "size" in known:
            known["size"] = tuple(known["size"]) if not isinstance(known["size"], int) else known["size"]
        return cls(**known)

    def geometry_key(self) -> str:
        parts = {"v": PREPROCESS_VERSION, "orient": self.orient, "crop": self.crop, "margin": self.margin}
        if self.crop == "threshold":
            parts["threshold"] = self.threshold
        return _short_hash(parts)

    def image_key(self) -> str:
        return _short_hash({"geometry": self.geometry_key(), "size": list(self.size)})


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- image steps


def otsu_threshold(pixels: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold on [0, 1] pixels (computed on a subsample for speed)."""
    step = max(1, int(np.sqrt(pixels.size / 250_000)))
    sample = pixels[::step, ::step]
    hist, edges = np.histogram(sample, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    # class 0 is bins 0..i inclusive: the threshold is the upper edge of bin i
    return float(edges[int(np.argmax(between[:-1])) + 1]) if between.size > 1 else 0.5


def chest_wall_on_right(pixels: np.ndarray) -> bool:
    """True when the right half holds more tissue than the left (breast faces left)."""
    step = max(1, pixels.shape[0] // 256)
    columns = pixels[::step].mean(axis=0, dtype=np.float64)
    half = columns.size // 2
    return float(columns[columns.size - half:].sum()) > float(columns[:half].sum())


def breast_bbox(pixels: np.ndarray, method: str = "otsu", threshold: float = 0.1, margin: float = 0.02) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the largest bright component, on a downsampled mask."""
    from scipy import ndimage

    rows, cols = pixels.shape
    if method == "none":
        return 0, rows, 0, cols
    step = max(1, int(np.ceil(max(rows, cols) / 512)))
    small = pixels[::step, ::step]
    level = otsu_threshold(small) if method == "otsu" else threshold
    mask = small > level
    mask = ndimage.binary_opening(mask, iterations=1)
    labels, count = ndimage.label(mask)
    if count == 0:
        return 0, rows, 0, cols
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    found = ndimage.find_objects((labels == largest).astype(np.int8))
    if not found or found[0] is None:
        return 0, rows, 0, cols
    rs, cs = found[0]
    pad_r, pad_c = int(margin * rows), int(margin * cols)
    r0 = max(0, rs.start * step - pad_r)
    r1 = min(rows, rs.stop * step + pad_r)
    c0 = max(0, cs.start * step - pad_c)
    c1 = min(cols, cs.stop * step + pad_c)
    if r1 - r0 < 4 or c1 - c0 < 4:
        return 0, rows, 0, cols
    return int(r0), int(r1), int(c0), int(c1)


def resize_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of a float32 image to (rows, columns)."""
    from scipy import ndimage

    rows, cols = pixels.shape
    out_r, out_c = int(size[0]), int(size[1])
    if (rows, cols) == (out_r, out_c):
        return pixels.astype(np.float32, copy=True)
    zoom = (out_r / rows, out_c / cols)
    sigma = [max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom]
    src = ndimage.gaussian_filter(pixels, sigma=sigma, mode="nearest") if max(sigma) > 0.3 else pixels
    # sample at pixel centres (align corners = False)
    rr = (np.arange(out_r, dtype=np.float32) + 0.5) / zoom[0] - 0.5
    cc = (np.arange(out_c, dtype=np.float32) + 0.5) / zoom[1] - 0.5
    coords = np.meshgrid(np.clip(rr, 0, rows - 1), np.clip(cc, 0, cols - 1), indexing="ij")
    out = ndimage.map_coordinates(src, coords, order=1, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def compute_geometry(pixels: np.ndarray, settings: PreprocessSettings) -> Geometry:
    flip = bool(settings.orient and chest_wall_on_right(pixels))
    oriented = pixels[:, ::-1] if flip else pixels
    bbox = breast_bbox(oriented, settings.crop, settings.threshold, settings.margin)
    return Geometry(flip=flip, bbox=bbox, shape=tuple(pixels.shape))


def apply_geometry(pixels: np.ndarray, geometry: Geometry) -> np.ndarray:
    oriented = pixels[:, ::-1] if geometry.flip else pixels
    r0, r1, c0, c1 = geometry.bbox
    return oriented[r0:r1, c0:c1]


def preprocess_pixels(pixels: np.ndarray, settings: PreprocessSettings, geometry: Geometry | None = None) -> tuple[np.ndarray, Geometry]:
    """Orient, crop, resize one decoded image; returns (float32 (rows, cols), geometry)."""
    if geometry is None or tuple(geometry.shape) != tuple(pixels.shape):
        geometry = compute_geometry(pixels, settings)
    return resize_image(apply_geometry(pixels, geometry), settings.size), geometry


def preprocess_file(path: str | os.PathLike, settings: PreprocessSettings) -> np.ndarray:
    """Decode and preprocess one file without any cache; float32 (rows, cols)."""
    image, _ = preprocess_pixels(read_mammogram(path).pixels, settings)
    return image


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return np.broadcast_to(image, (channels, *image.shape)) if channels > 1 else image[None]


# ---------------------------------------------------------------- cache


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PreprocessCache:
    """Preprocessed images on disk, keyed by file content and settings."""

    INDEX = "content-hashes.json"

    def __init__(self, cache_dir: str | os.PathLike):
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._hashes: dict[str, str] = {}
        self._dirty = False
        try:
            self._hashes = json.loads((self.dir / self.INDEX).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self._hashes = {}

    @staticmethod
    def _stat_key(path: Path) -> str:
        st = path.stat()
        return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"

    def content_hash(self, path: str | os.PathLike) -> str:
        path = Path(path)
        key = self._stat_key(path)
        with self._lock:
            known = self._hashes.get(key)
        if known:
            return known
        digest = file_sha256(path)
        with self._lock:
            self._hashes[key] = digest
            self._dirty = True
        return digest

    def remember(self, stat_key: str, digest: str) -> None:
        with self._lock:
            if self._hashes.get(stat_key) != digest:
                self._hashes[stat_key] = digest
                self._dirty = True

    def save_index(self) -> None:
        with self._lock:
            if not self._dirty:
                return
            data = dict(self._hashes)
            self._dirty = False
        write_json(self.dir / self.INDEX, data)

    def image_path(self, digest: str, settings: PreprocessSettings) -> Path:
        return self.dir / "images" / digest[:2] / f"{digest[:40]}-{settings.image_key()}.npy"

    def geometry_path(self, digest: str, settings: PreprocessSettings) -> Path:
        return self.dir / "geometry" / digest[:2] / f"{digest[:40]}-{settings.geometry_key()}.json"

    def load_image(self, digest: str, settings: PreprocessSettings) -> np.ndarray | None:
        path = self.image_path(digest, settings)
        try:
            image = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None
        if image.shape != tuple(settings.size):
            return None
        return image

    def store_image(self, digest: str, settings: PreprocessSettings, image: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(image, dtype=np.float16), allow_pickle=False)
        write_bytes(self.image_path(digest, settings), buffer.getvalue())

    def load_geometry(self, digest: str, settings: PreprocessSettings) -> Geometry | None:
        try:
            return Geometry.from_dict(json.loads(self.geometry_path(digest, settings).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store_geometry(self, digest: str, settings: PreprocessSettings, geometry: Geometry) -> None:
        write_json(self.geometry_path(digest, settings), geometry.to_dict())

    def get_or_compute(self, path: str | os.PathLike, settings: PreprocessSettings, digest: str | None = None) -> tuple[np.ndarray, bool]:
        """(image float32 (rows, cols), was_cached). Raises MammogramReadError for a bad file."""
        digest = digest or self.content_hash(path)
        cached = self.load_image(digest, settings)
        if cached is not None:
            return cached.astype(np.float32), True
        geometry = self.load_geometry(digest, settings)
        pixels = read_mammogram(path).pixels
        image, new_geometry = preprocess_pixels(pixels, settings, geometry)
        del pixels
        if geometry is None or geometry != new_geometry:
            self.store_geometry(digest, settings, new_geometry)
        image16 = image.astype(np.float16)
        self.store_image(digest, settings, image16)
        return image16.astype(np.float32), False  # identical to what the next read returns


# ---------------------------------------------------------------- dataset


class MammogramDataset:
    """torch Dataset of ImageRecords -> (float32 tensor (C, H, W) in [0, 1], float label).

    With ``cache_dir`` preprocessed images are read from / written to the cache;
    run ``preprocess_records`` first to warm it in parallel and to drop bad files.
    A file that cannot be read raises MammogramReadError naming it.
    """

    def __init__(self, records: Sequence[Any], settings: PreprocessSettings | None = None, cache_dir: str | os.PathLike | None = None):
        self.records = list(records)
        self.settings = settings or PreprocessSettings()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._cache: PreprocessCache | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.array([int(r.label) for r in self.records], dtype=np.int64)

    def _get_cache(self) -> PreprocessCache | None:
        if self.cache_dir is None:
            return None
        if self._cache is None:  # created lazily: one per DataLoader worker process
            self._cache = PreprocessCache(self.cache_dir)
        return self._cache

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_cache"] = None  # locks do not pickle; spawn workers make their own
        return state

    def image(self, index: int) -> np.ndarray:
        """Preprocessed single-channel image (rows, cols) float32."""
        record = self.records[index]
        try:
            cache = self._get_cache()
            if cache is None:
                return preprocess_file(record.path, self.settings)
            return cache.get_or_compute(record.path, self.settings)[0]
        except MammogramReadError as err:
            raise MammogramReadError(f"{getattr(record, 'rel_path', record.path)}: {err}") from None

    def __getitem__(self, index: int):
        import torch

        image = to_channels(self.image(index), self.settings.channels)
        return torch.from_numpy(np.ascontiguousarray(image)), torch.tensor(float(self.records[index].label))


@dataclass
class PreprocessReport:
    total: int = 0
    decoded: int = 0
    cached: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, reason)
    failed_indices: list[int] = field(default_factory=list)
    seconds: float = 0.0
    cancelled: bool = False

    def to_dict(self) -> dict:
        return {
            "total": self.total,
            "decoded": self.decoded,
            "cached": self.cached,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "seconds": round(self.seconds, 3),
            "cancelled": self.cancelled,
        }


def _preprocess_job(args: tuple[int, str, dict, str, str]) -> tuple[int, str | None, str | None, bool, str | None]:
    """(index, stat_key, digest, was_cached, error) for one file (runs in a worker process).

    ``digest`` is the file's content hash, already computed by the caller.
    """
    index, path, settings_dict, cache_dir, digest = args
    settings = PreprocessSettings.from_dict(settings_dict)
    try:
        cache = PreprocessCache.__new__(PreprocessCache)  # no index load per file
        cache.dir = Path(cache_dir)
        cache._lock = threading.Lock()
        cache._hashes = {}
        cache._dirty = False
        stat_key = PreprocessCache._stat_key(Path(path))
        _, was_cached = cache.get_or_compute(path, settings, digest)
        return index, stat_key, digest, was_cached, None
    except MammogramReadError as err:
        return index, None, None, False, str(err)
    except Exception as err:  # one bad file never stops the pass
        return index, None, None, False, f"preprocessing failed: {type(err).__name__}: {err}"[:200]


def preprocess_records(
    records: Sequence[Any],
    settings: PreprocessSettings | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> PreprocessReport:
    """Warm the cache for ``records`` (decode + preprocess what is missing).

    ``workers > 1`` uses a process pool with the spawn start method (safe next to
    Qt). Returns a report listing files that failed (drop them before training).
    """
    if cache_dir is None:
        raise ValueError("preprocess_records needs a cache_dir")
    settings = settings or PreprocessSettings()
    start = time.perf_counter()
    cache = PreprocessCache(cache_dir)
    report = PreprocessReport(total=len(records))
    jobs = []
    done = 0
    if progress:
        progress(0, len(records))
    # Already-cached files are found here without a worker (hash memo + one stat).
    for i, record in enumerate(records):
        try:
            digest = cache.content_hash(record.path)
        except OSError as err:
            report.failed.append((getattr(record, "rel_path", str(record.path)), f"cannot open file: {err.strerror or err}"))
            report.failed_indices.append(i)
            done += 1
            continue
        if cache.image_path(digest, settings).is_file():
            report.cached += 1
            done += 1
            if progress:
                progress(done, len(records))
            continue
        jobs.append((i, str(record.path), settings.to_dict(), str(cache.dir), digest))

    def handle(result: tuple) -> None:
        nonlocal done
        index, stat_key, digest, was_cached, error = result
        if error is not None:
            rec = records[index]
            report.failed.append((getattr(rec, "rel_path", str(rec.path)), error))
            report.failed_indices.append(index)
        else:
            cache.remember(stat_key, digest)
            if was_cached:
                report.cached += 1
            else:
                report.decoded += 1
        done += 1
        if progress:
            progress(done, len(records))

    if workers <= 1 or len(jobs) < 2:
        for job in jobs:
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            handle(_preprocess_job(job))
    else:
        import logging
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        from concurrent.futures.process import BrokenProcessPool

        handled: set[int] = set()
        ctx = multiprocessing.get_context("spawn")
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                pending = set()
                queue = list(jobs)
                queue.reverse()
                while queue or pending:
                    while queue and len(pending) < workers * 4 and not (cancel is not None and cancel.is_set()):
                        pending.add(pool.submit(_preprocess_job, queue.pop()))
                    if cancel is not None and cancel.is_set():
                        report.cancelled = True
                        queue.clear()
                    if not pending:
                        break
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        result = future.result()
                        handled.add(result[0])
                        handle(result)
        except BrokenProcessPool:
            # e.g. a script without an `if __name__ == "__main__":` guard under spawn
            logging.getLogger(__name__).warning(
                "worker processes failed to start; preprocessing the rest in this process "
                "(guard your script's entry point with if __name__ == '__main__')"
            )
            for job in jobs:
                if job[0] in handled:
                    continue
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    break
                handle(_preprocess_job(job))
    cache.save_index()
    report.seconds = time.perf_counter() - start
    return report
