"""Per-file jobs over many files, serial or in a spawn process pool, with progress and cancel.

Two jobs: the header read of the scan (fast, default) and the full decode of ``--verify``
(every file's pixels through ``read_mammogram``, so a run never meets an undecodable file).
Both are plain functions the GUI calls from its worker thread with its own progress and
cancel; nothing here touches Qt.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, Sequence

from arfl_studio.data.dicom import HeaderInfo, MammogramReadError, read_header, read_mammogram

Progress = Callable[[int, int], None]
# (path, header or None, reason or None, category or None)
HeaderResult = tuple[str, "HeaderInfo | None", "str | None", "str | None"]
# (path, reason or None, category or None)
VerifyResult = tuple[str, "str | None", "str | None"]


def header_job(path: str, include_non_mammograms: bool = False, include_for_processing: bool = False,
               frame: int | None = None) -> HeaderResult:
    try:
        info = read_header(path, include_non_mammograms=include_non_mammograms,
                           include_for_processing=include_for_processing, frame=frame)
        return path, info, None, None
    except MammogramReadError as err:
        return path, None, str(err), err.category
    except Exception as err:  # never let one file stop a scan
        return path, None, f"unreadable: {type(err).__name__}", "unreadable"


def verify_job(path: str, frame: int | None = None) -> VerifyResult:
    try:
        read_mammogram(path, frame=frame)
        return path, None, None
    except MammogramReadError as err:
        return path, str(err), err.category
    except MemoryError:
        return path, "not enough memory to decode the image", "undecodable"
    except Exception as err:
        return path, f"unreadable: {type(err).__name__}", "unreadable"


def run_jobs(job: Callable, paths: Sequence, workers: int = 1, progress: Progress | None = None,
             cancel: threading.Event | None = None, chunk: int | None = None) -> tuple[list, bool]:
    """``job(str(path))`` for every path, in order; returns (results, cancelled)."""
    total = len(paths)
    results: list = []
    if progress:
        progress(0, total)
    if workers <= 1 or total < 2 * max(workers, 1):
        for i, path in enumerate(paths):
            if cancel is not None and cancel.is_set():
                return results, True
            results.append(job(str(path)))
            if progress:
                progress(i + 1, total)
        return results, False
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = chunk or max(1, min(64, total // (workers * 8) or 1))
    ctx = multiprocessing.get_context("spawn")  # fork is unsafe with threads (GUI, torch)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        iterator = pool.map(job, [str(p) for p in paths], chunksize=chunk)
        for i, item in enumerate(iterator):
            results.append(item)
            if progress:
                progress(i + 1, total)
            if cancel is not None and cancel.is_set():
                pool.shutdown(wait=True, cancel_futures=True)
                return results, True
    return results, False


def read_headers(paths: Sequence, workers: int = 1, progress: Progress | None = None,
                 cancel: threading.Event | None = None, *, include_non_mammograms: bool = False,
                 include_for_processing: bool = False, frame: int | None = None) -> tuple[list[HeaderResult], bool]:
    """Header-only reads; returns (results, cancelled)."""
    job = functools.partial(header_job, include_non_mammograms=include_non_mammograms,
                            include_for_processing=include_for_processing, frame=frame)
    return run_jobs(job, paths, workers, progress, cancel)


def verify_files(paths: Sequence, workers: int = 1, progress: Progress | None = None,
                 cancel: threading.Event | None = None, *, frame: int | None = None) -> tuple[list[VerifyResult], bool]:
    """Decode every file's pixels (as training will); returns (results, cancelled).

    One file per task: decoding a mammogram takes long enough that chunking only delays
    progress and cancel.
    """
    return run_jobs(functools.partial(verify_job, frame=frame), paths, workers, progress, cancel, chunk=1)
