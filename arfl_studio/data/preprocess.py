"""Preprocessing for training, and the torch Dataset.

Steps, each a setting (``PreprocessSettings``):
1. decode (``read_mammogram``: float32 [0, 1], tissue bright);
2. ``orient``: flip left-right so every breast's chest wall is on the left (decided
   from the image itself, the side holding more tissue, not from tags);
3. ``crop``: the breast's box plus ``margin`` (``crop.py``): "breast" (default: a
   level just above the background, largest component), "otsu", "threshold" (fixed
   ``threshold``), or "none";
4. resize to ``size`` (rows, columns), antialiased (Gaussian prefilter + bilinear):
   ``fit = "stretch"`` fills the input (the paper's choice, aspect ratio not kept),
   ``fit = "pad"`` keeps the aspect ratio and letterboxes with black, exactly where
   ``geometry.placement`` says, so maps come back onto the anatomy;
5. ``channels``: 1, or 3 (replicated, for ImageNet backbones) at load time.

The on-disk cache is ``cache.PreprocessCache``; ``preprocess_records`` warms it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from arfl_studio.data.cache import PreprocessCache, file_sha256, frame_digest
from arfl_studio.data.crop import CROP_METHODS, DEFAULT_CROP, breast_bbox, chest_wall_on_right, otsu_threshold
from arfl_studio.data.dicom import MammogramReadError, read_mammogram
from arfl_studio.data.geometry import FITS, Geometry, placement

# 2: the "breast" crop became the default and images carry the fit
PREPROCESS_VERSION = 2
__all__ = [
    "CROP_METHODS", "FITS", "PREPROCESS_VERSION", "MammogramDataset", "PreprocessCache", "PreprocessReport",
    "PreprocessSettingError", "PreprocessSettings", "apply_geometry", "breast_bbox", "chest_wall_on_right",
    "compute_geometry", "file_sha256", "otsu_threshold", "preprocess_file", "preprocess_pixels", "preprocess_records",
    "resize_image", "to_channels",
]


class PreprocessSettingError(ValueError):
    """An invalid preprocessing setting; the message names it and what is allowed."""


@dataclass(frozen=True)
class PreprocessSettings:
    orient: bool = True
    crop: str = DEFAULT_CROP  # "breast" | "otsu" | "threshold" | "none"
    size: tuple[int, int] = (224, 224)  # rows, columns
    channels: int = 3  # 1 or 3
    threshold: float = 0.1  # for crop="threshold", in display units [0, 1]
    margin: float = 0.02  # crop margin, fraction of the image size
    fit: str = "stretch"  # "stretch" (the paper) | "pad" (letterbox, aspect ratio kept)

    def __post_init__(self) -> None:
        size = self.size
        if _is_int(size):
            size = (size, size)
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or not all(_is_int(s) for s in size):
            raise PreprocessSettingError(f"size must be rows and columns as whole numbers (e.g. [224, 224]), not {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in size))
        self.validate()

    def validate(self) -> "PreprocessSettings":
        if not isinstance(self.orient, (bool, np.bool_)):
            raise PreprocessSettingError(f"orient must be true or false, not {self.orient!r}")
        if self.crop not in CROP_METHODS:
            raise PreprocessSettingError(f"crop must be one of {', '.join(CROP_METHODS)}, not {self.crop!r}")
        if not all(8 <= s <= 8192 for s in self.size):
            raise PreprocessSettingError(f"size must be (rows, columns), each 8..8192, not {list(self.size)}")
        if not _is_int(self.channels) or self.channels not in (1, 3):
            raise PreprocessSettingError(f"channels must be 1 or 3, not {self.channels!r}")
        for name, low, high, closed in (("threshold", 0.0, 1.0, False), ("margin", 0.0, 0.25, True)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            if not ok or not (low <= value <= high if closed else low <= value < high):
                bracket = "]" if closed else ")"
                raise PreprocessSettingError(f"{name} must be a number in [{low:g}, {high:g}{bracket}, not {value!r}")
        if self.fit not in FITS:
            raise PreprocessSettingError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}")
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
        return _short_hash({"geometry": self.geometry_key(), "size": list(self.size), "fit": self.fit})


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- image steps


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


def fit_image(crop: np.ndarray, size: tuple[int, int], fit: str = "stretch") -> np.ndarray:
    """The crop resized into a model input of ``size``: stretched, or letterboxed
    (black around) at the block ``placement`` gives."""
    place = placement(crop.shape, size, fit)
    if (place.rows, place.cols) == tuple(int(s) for s in size):
        return resize_image(crop, size)
    out = np.zeros(tuple(int(s) for s in size), dtype=np.float32)
    out[place.top:place.top + place.rows, place.left:place.left + place.cols] = resize_image(crop, (place.rows, place.cols))
    return out


def compute_geometry(pixels: np.ndarray, settings: PreprocessSettings) -> Geometry:
    """Flip and crop box of one decoded image (native pixels, float [0, 1])."""
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
    return fit_image(apply_geometry(pixels, geometry), settings.size, settings.fit), geometry


def preprocess_file(path: str | os.PathLike, settings: PreprocessSettings, frame: int | None = None) -> np.ndarray:
    """Decode and preprocess one file (``frame`` of a multi-frame one) without any cache; float32 (rows, cols)."""
    image, _ = preprocess_pixels(read_mammogram(path, frame=frame).pixels, settings)
    return image


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return np.broadcast_to(image, (channels, *image.shape)) if channels > 1 else image[None]


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
            frame = getattr(record, "frame", None)
            if cache is None:
                return preprocess_file(record.path, self.settings, frame)
            return cache.get_or_compute(record.path, self.settings, frame=frame)[0]
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


def _preprocess_job(args: tuple[int, str, dict, str, str, int | None]) -> tuple[int, bool, str | None]:
    """(index, was_cached, error) for one file (runs in a worker process).

    ``digest`` is the file's (frame's) cache key, already computed (and remembered) by the caller.
    """
    index, path, settings_dict, cache_dir, digest, frame = args
    settings = PreprocessSettings.from_dict(settings_dict)
    try:
        _, was_cached = PreprocessCache.worker(cache_dir).get_or_compute(path, settings, digest, frame)
        return index, was_cached, None
    except MammogramReadError as err:
        return index, False, str(err)
    except Exception as err:  # one bad file never stops the pass
        return index, False, f"preprocessing failed: {type(err).__name__}: {err}"[:200]


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
    cache.clean_leftovers()
    report = PreprocessReport(total=len(records))
    jobs = []
    done = 0
    if progress:
        progress(0, len(records))
    # Already-cached files are found here without a worker (hash memo + one stat).
    for i, record in enumerate(records):
        frame = getattr(record, "frame", None)
        try:
            digest = frame_digest(cache.content_hash(record.path), frame)
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
        jobs.append((i, str(record.path), settings.to_dict(), str(cache.dir), digest, frame))

    def handle(result: tuple) -> None:
        nonlocal done
        index, was_cached, error = result
        if error is not None:
            rec = records[index]
            report.failed.append((getattr(rec, "rel_path", str(rec.path)), error))
            report.failed_indices.append(index)
        else:
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
