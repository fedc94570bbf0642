"""Decoding compressed mammograms in a separate process, so that the app's window never freezes.

The JPEG 2000, JPEG-LS and JPEG lossless plugins hold the GIL while they decode (5-7 s for a
full-field mammogram), so decoding in a worker *thread* still freezes the UI thread. A small pool
of ``spawn`` processes (safe next to Qt, and in the frozen bundle, whose entry point calls
``multiprocessing.freeze_support()``) decodes instead. The float32 pixels come back through a
memory-mapped file in the pool's private folder, not as a 100 MB pickle; the caller copies them
out and deletes the file at once.

The GUI installs one pool (started on first use) and shuts it down on exit. Without an installed
pool (headless commands, DataLoader workers) :func:`read_mammogram_isolated` reads in-process, and
uncompressed files are always read in-process (nothing there holds the GIL for long). A decoder
that crashes its process becomes a MammogramReadError for that file; the next read starts a fresh pool.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from arfl_studio.data.datasets.reasons import MammogramReadError
from arfl_studio.data.dicom.reader import Mammogram, read_mammogram


def _lower_priority() -> None:
    """In each pool process, before anything else: decoding yields the CPU to the window's own thread."""
    if hasattr(os, "nice"):
        try:
            os.nice(10)
        except OSError:
            pass


def _decode_to_file(path: str, frame: int | None, out_dir: str, clip: bool = True) -> dict:
    """In the pool's process: decode ``path`` and write its pixels to a memory-mapped file in ``out_dir``."""
    try:
        mammogram = read_mammogram(path, frame=frame, clip=clip)
    except MammogramReadError as err:  # sent as data: the exception's category would not survive a pickle
        return {"error": str(err), "category": err.category}
    pixels = mammogram.pixels
    fd, name = tempfile.mkstemp(suffix=".f32", dir=out_dir)
    os.close(fd)
    mapped = np.memmap(name, dtype=np.float32, mode="w+", shape=pixels.shape)
    mapped[:] = pixels
    mapped.flush()
    del mapped
    # the pixels travel in the file; the record keeps an empty array in their place
    meta = dataclasses.replace(mammogram, pixels=np.empty((0, 0), np.float32))
    return {"file": name, "shape": pixels.shape, "meta": meta}


def _take_pixels(name: str, shape: tuple[int, int]) -> np.ndarray:
    """The pixels of a file the pool wrote, as an ordinary array; the file is deleted."""
    try:
        mapped = np.memmap(name, dtype=np.float32, mode="r", shape=tuple(shape))
        pixels = np.array(mapped)
        del mapped
        return pixels
    finally:
        try:
            os.unlink(name)
        except OSError:
            pass


class DecodePool:
    """A few decoder processes, started on the first :meth:`read` and stopped by :meth:`shutdown`."""

    def __init__(self, workers: int = 2):
        self.workers = max(1, int(workers))
        self._executor: ProcessPoolExecutor | None = None
        self._folder: str | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._executor is not None

    def _start(self) -> tuple[ProcessPoolExecutor, str]:
        with self._lock:
            if self._executor is None:
                self._folder = tempfile.mkdtemp(prefix="arfl-decode-")  # private (0700): pixels may show PHI
                self._executor = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
                )
            assert self._folder is not None  # made with the executor; shutdown clears both
            return self._executor, self._folder

    def read(self, path: str | os.PathLike, frame: int | None = None, clip: bool = True) -> Mammogram:
        """``read_mammogram(path, frame=frame, clip=clip)`` in a decoder process; the calling thread only waits."""
        for _attempt in range(2):
            executor, folder = self._start()
            try:
                future = executor.submit(_decode_to_file, str(path), frame, folder, clip)
            except BrokenProcessPool:  # an earlier file broke the pool: start a fresh one for this file
                self._discard(executor)
                continue
            try:
                result = future.result()
            except BrokenProcessPool:
                self._discard(executor)
                raise MammogramReadError("the decoder crashed on this file (its pixel data is probably corrupt)", "undecodable") from None
            break
        else:
            raise MammogramReadError("the decoder processes could not start", "undecodable")
        if "error" in result:
            raise MammogramReadError(result["error"], result["category"])
        return dataclasses.replace(result["meta"], pixels=_take_pixels(result["file"], result["shape"]))

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """Drop a broken pool and its folder, which may hold a crashed decode's partial pixel file
        (patient data): the next read starts a fresh pool in a new folder."""
        with self._lock:
            folder = None
            if self._executor is executor:
                folder, self._executor, self._folder = self._folder, None, None
        executor.shutdown(wait=True, cancel_futures=True)  # broken: its processes are ended, not waited for
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop the processes and remove the pool's folder (a later read starts the pool again)."""
        with self._lock:
            executor, folder = self._executor, self._folder
            self._executor = self._folder = None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


_installed: DecodePool | None = None


def install(pool: DecodePool | None) -> None:
    """Make ``pool`` the one :func:`read_mammogram_isolated` uses (None: read in-process)."""
    global _installed
    _installed = pool


def installed() -> DecodePool | None:
    return _installed


def is_compressed(path: str | os.PathLike) -> bool:
    """Whether the file's transfer syntax is compressed (read from its file meta only)."""
    try:
        from pydicom.filereader import read_file_meta_info
        from pydicom.uid import UID

        syntax = read_file_meta_info(Path(path)).get("TransferSyntaxUID")
        return syntax is not None and UID(str(syntax)).is_compressed
    except Exception:  # no file meta, unreadable: the in-process read says why
        return False


def read_mammogram_isolated(path: str | os.PathLike, frame: int | None = None, clip: bool = True) -> Mammogram:
    """``read_mammogram``, in the installed decode pool when the file is compressed."""
    pool = _installed
    if pool is not None and is_compressed(path):
        return pool.read(path, frame, clip)
    return read_mammogram(path, frame=frame, clip=clip)
