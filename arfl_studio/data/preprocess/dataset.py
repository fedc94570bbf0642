"""The torch Dataset of preprocessed mammograms, and the parallel warm-up of the cache."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from arfl_studio.data.dicom.reader import MammogramReadError, read_mammogram
from arfl_studio.data.preprocess.geometry import Geometry
from arfl_studio.data.preprocess.cache import PreprocessCache, frame_digest
from arfl_studio.data.preprocess.settings import PreprocessSettings
from arfl_studio.data.preprocess.transform import PreprocessCancelled, compute_geometry, preprocess_file, to_channels

if TYPE_CHECKING:
    from concurrent.futures import Future


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

    def geometry(self, index: int) -> Geometry:
        """The preprocessing geometry of image ``index`` (from the cache when it holds it)."""
        record = self.records[index]
        frame = getattr(record, "frame", None)
        cache = self._get_cache()
        if cache is not None:
            stored = cache.load_geometry(frame_digest(cache.content_hash(record.path), frame), self.settings)
            if stored is not None:
                return stored
        mammogram = read_mammogram(record.path, frame=frame)
        return compute_geometry(mammogram.pixels, self.settings, spacing=mammogram.pixel_spacing)

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


def _preprocess_job(
    args: tuple[int, str, dict, str, str, int | None], cancel: threading.Event | None = None
) -> tuple[int, bool, str | None]:
    """(index, was_cached, error) for one file (in a worker process, or here with ``cancel``).

    ``digest`` is the file's (frame's) cache key, already computed (and remembered) by the caller.
    Raises :class:`PreprocessCancelled` when ``cancel`` is set during the file.
    """
    index, path, settings_dict, cache_dir, digest, frame = args
    settings = PreprocessSettings.from_dict(settings_dict)
    try:
        _, was_cached = PreprocessCache.worker(cache_dir).get_or_compute(path, settings, digest, frame, cancel)
        return index, was_cached, None
    except PreprocessCancelled:
        raise
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
    ``cancel`` is checked per file while hashing, between the steps of each image
    preprocessed here, and every 0.5 s while pool workers are busy (they are then ended
    at once, a huge image half done); the report says ``cancelled``.
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
        if cancel is not None and cancel.is_set():  # hashing a large dataset takes a while
            report.cancelled = True
            break
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

    if report.cancelled:
        jobs = []  # stopped while hashing: nothing is preprocessed
    if workers <= 1 or len(jobs) < 2:
        for job in jobs:
            try:
                if cancel is not None and cancel.is_set():
                    raise PreprocessCancelled
                handle(_preprocess_job(job, cancel))
            except PreprocessCancelled:
                report.cancelled = True
                break
    else:
        import logging
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        from arfl_studio.data.child_processes import guarded_pool, stop_pool  # spawn; workers die with their parent

        handled: set[int] = set()
        try:
            with guarded_pool(workers) as pool:
                pending: set[Future[tuple[int, bool, str | None]]] = set()
                queue = list(jobs)
                queue.reverse()
                while queue or pending:
                    while queue and len(pending) < workers * 4 and not (cancel is not None and cancel.is_set()):
                        pending.add(pool.submit(_preprocess_job, queue.pop()))
                    if cancel is not None and cancel.is_set():
                        report.cancelled = True
                        stop_pool(pool)  # a huge image in a worker is not waited for
                        break
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
                try:
                    if cancel is not None and cancel.is_set():
                        raise PreprocessCancelled
                    handle(_preprocess_job(job, cancel))
                except PreprocessCancelled:
                    report.cancelled = True
                    break
    cache.save_index()
    report.seconds = time.perf_counter() - start
    return report
