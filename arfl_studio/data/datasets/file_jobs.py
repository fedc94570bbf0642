"""Per-file jobs over many files, serial or in a spawn process pool, with progress and cancel.

Two jobs: the header read of the scan (fast, default) and the full decode of ``--verify``
(every file's pixels through ``read_mammogram``, so a run never meets an undecodable file).
Both are plain functions the GUI calls from its worker thread with its own progress and
cancel; nothing here touches Qt.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar, overload

from arfl_studio.data.dicom.reader import HeaderInfo, MammogramReadError, read_header, read_mammogram

if TYPE_CHECKING:
    from concurrent.futures import Future

Progress = Callable[[int, int], None]
# (path, header or None, reason or None, category or None)
HeaderResult = tuple[str, "HeaderInfo | None", "str | None", "str | None"]
# (path, reason or None, category or None)
VerifyResult = tuple[str, "str | None", "str | None"]
AnyPath = str | os.PathLike[str]  # a file, as a string or a Path
T = TypeVar("T")
CANCEL_POLL_S = 0.1  # how often a pool run looks at the cancel event while every worker is busy
HEADER_CRASH_REASON = "reading the header crashed its worker process"


def header_job(
    path: str, include_non_mammograms: bool = False, include_for_processing: bool = False, frame: int | None = None
) -> HeaderResult:
    try:
        info = read_header(path, include_non_mammograms=include_non_mammograms, include_for_processing=include_for_processing, frame=frame)
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


def _chunk_job(job: Callable[[str], T], paths: list[str]) -> list[T]:
    return [job(path) for path in paths]


@overload
def run_jobs(
    job: Callable[[str], T],
    paths: Sequence[AnyPath],
    workers: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    chunk: int | None = None,
    *,
    crash_result: Callable[[str], T],
    on_result: Callable[[T], None] | None = None,
) -> tuple[list[T], bool]: ...


@overload
def run_jobs(
    job: Callable[[str], T],
    paths: Sequence[AnyPath],
    workers: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    chunk: int | None = None,
    crash_result: None = None,
    on_result: Callable[[T], None] | None = None,
) -> tuple[list[T | None], bool]: ...


def run_jobs(
    job: Callable[[str], T],
    paths: Sequence[AnyPath],
    workers: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    chunk: int | None = None,
    crash_result: Callable[[str], T] | None = None,
    on_result: Callable[[T], None] | None = None,
) -> tuple[list[T], bool] | tuple[list[T | None], bool]:
    """``job(str(path))`` for every path, in order; returns (results, cancelled).

    ``on_result(result)`` is called in this thread as each result arrives (in completion
    order), so a caller can keep what is done even when the run is interrupted.

    A worker process that dies (a decoder crashing on a hostile file, the system killing it
    for memory) does not end the scan: only a few chunks are in flight at a time, the ones
    in flight when it died are retried one file at a time in a fresh process, and the file
    that kills that process too gets ``crash_result(path)``.
    """
    total = len(paths)
    names = [str(p) for p in paths]
    if progress:
        progress(0, total)
    if workers <= 1 or total < 2 * max(workers, 1):
        results: list[T] = []
        for i, path in enumerate(names):
            if cancel is not None and cancel.is_set():
                return results, True
            results.append(job(path))
            if on_result is not None:
                on_result(results[-1])
            if progress:
                progress(i + 1, total)
        return results, False
    from collections import deque
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    from arfl_studio.data.child_processes import guarded_pool, stop_pool  # spawn; workers die with their parent

    chunk = chunk or max(1, min(64, total // (workers * 8) or 1))
    slots: list[T | None] = [None] * total
    done = 0
    queue = deque(list(range(b, min(b + chunk, total))) for b in range(0, total, chunk))
    isolate: deque[list[int]] = deque()  # files in flight when a worker died, retried one at a time

    def finish(indices: list[int], outcome: Sequence[T | None]) -> None:
        nonlocal done
        for i, item in zip(indices, outcome):
            slots[i] = item
            if on_result is not None and item is not None:
                on_result(item)
        done += len(indices)
        if progress:
            progress(done, total)

    while queue or isolate:
        source, width = (isolate, 1) if isolate else (queue, 2 * workers)
        suspects: list[int] = []
        with guarded_pool(1 if width == 1 else workers) as pool:
            pending: dict[Future[list[T]], list[int]] = {}
            while source or pending:
                while source and len(pending) < width:
                    indices = source.popleft()
                    pending[pool.submit(_chunk_job, job, [names[i] for i in indices])] = indices
                finished, _ = wait(pending, timeout=CANCEL_POLL_S, return_when=FIRST_COMPLETED)
                for future in finished:
                    indices = pending.pop(future)
                    try:
                        finish(indices, future.result())
                    except BrokenProcessPool:
                        suspects.extend(indices)
                if suspects:  # the pool is gone: what was in flight failed with it
                    for indices in pending.values():
                        suspects.extend(indices)
                    break
                if cancel is not None and cancel.is_set():
                    stop_pool(pool)  # a decode of a huge image in flight is not waited for
                    return [item for item in slots if item is not None], True
        if suspects and width == 1:  # alone in its process: this file kills it
            finish(suspects, [crash_result(names[i]) if crash_result else None for i in suspects])
        else:
            isolate.extend([i] for i in sorted(suspects))
    return slots, False


def read_headers(
    paths: Sequence[AnyPath],
    workers: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    *,
    include_non_mammograms: bool = False,
    include_for_processing: bool = False,
    frame: int | None = None,
    on_result: Callable[[HeaderResult], None] | None = None,
) -> tuple[list[HeaderResult], bool]:
    """Header-only reads; returns (results, cancelled). ``on_result`` sees each as it arrives."""
    job = functools.partial(
        header_job, include_non_mammograms=include_non_mammograms, include_for_processing=include_for_processing, frame=frame
    )
    return run_jobs(job, paths, workers, progress, cancel, crash_result=_header_crash, on_result=on_result)


def _header_crash(path: str) -> HeaderResult:
    return path, None, HEADER_CRASH_REASON, "unreadable"


def verify_files(
    paths: Sequence[AnyPath],
    workers: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    *,
    frame: int | None = None,
) -> tuple[list[VerifyResult], bool]:
    """Decode every file's pixels (as training will); returns (results, cancelled).

    One file per task: decoding a mammogram takes long enough that chunking only delays
    progress and cancel.
    """
    return run_jobs(functools.partial(verify_job, frame=frame), paths, workers, progress, cancel, chunk=1, crash_result=_verify_crash)


def _verify_crash(path: str) -> VerifyResult:
    return path, "decoding crashed its worker process (decoder fault or out of memory)", "undecodable"
