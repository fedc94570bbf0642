"""Thumbnails for the Dataset pane's image list: made in a worker, only for rows in view.

Decoding a full-field mammogram takes ~0.1 s, so a thumbnail is never made on the UI
thread. The list asks for the rows it shows (``request``); one worker drains the
queue, newest request first, and ends when it is empty (a later request starts
another). Thumbnails go through the preprocessing cache: the preprocessed image at
thumbnail size is stored next to the training images, and the crop geometry it
computes is the one training reuses (the geometry key does not depend on size).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from arfl_studio.gui.workers import TaskHandle, start_task

THUMB_SIZE = (48, 36)  # rows, columns: mammograms are taller than wide


def thumbnail_settings():
    from arfl_studio.data import PreprocessSettings

    return replace(PreprocessSettings(), size=THUMB_SIZE, channels=1)


def default_cache_dir() -> Path:
    from arfl_studio.data import default_data_dir

    return Path(default_data_dir()) / "cache"


def make_thumbnail(path: str | Path, cache=None) -> np.ndarray:
    """uint8 (rows, cols) thumbnail of one file: the preprocessed (oriented, cropped) image."""
    settings = thumbnail_settings()
    if cache is not None:
        image, _ = cache.get_or_compute(path, settings)
    else:
        from arfl_studio.data import preprocess_file

        image = preprocess_file(path, settings)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def _open_cache(cache_dir):
    if cache_dir is None:
        return None
    try:
        from arfl_studio.data import PreprocessCache

        return PreprocessCache(cache_dir)
    except OSError:  # a read-only or missing data folder: thumbnails still work, uncached
        return None


class ThumbnailLoader(QObject):
    """Makes thumbnails of the current list's paths in a worker, on request."""

    ready = Signal(int, object)  # row, uint8 array

    def __init__(self, cache_dir: str | Path | None = None, parent=None):
        super().__init__(parent)
        self.cache_dir = cache_dir
        self.paths: list[Path] = []
        self.generation = 0
        self.done: set[int] = set()
        self._queue: deque[tuple[int, int, Path]] = deque()
        self._lock = threading.Lock()
        self.task: TaskHandle | None = None

    def reset(self, paths) -> None:
        """A new list: forget what was queued or made for the old one."""
        with self._lock:
            self.generation += 1
            self._queue.clear()
        self.paths = list(paths)  # already Paths: re-wrapping 2,000 of them costs the UI thread 0.2 s
        self.done.clear()

    def request(self, rows) -> None:
        """Make thumbnails for ``rows`` (those in view); what was queued and left the view is dropped."""
        wanted = [r for r in rows if 0 <= r < len(self.paths) and r not in self.done]
        with self._lock:
            self._queue.clear()
            self._queue.extend((self.generation, r, self.paths[r]) for r in wanted)
        if wanted and (self.task is None or not self.task.is_running()):
            self._start()

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self) -> None:
        with self._lock:
            self._queue.clear()
        if self.task is not None:
            self.task.cancel()

    def _start(self) -> None:
        queue, lock, cache_dir = self._queue, self._lock, self.cache_dir

        def task(report, cancel):
            cache = _open_cache(cache_dir)
            try:
                while not cancel.is_set():
                    with lock:
                        if not queue:
                            return None
                        generation, row, path = queue.popleft()
                    try:
                        report((generation, row, make_thumbnail(path, cache)))
                    except Exception:  # noqa: BLE001 - a thumbnail is a nicety; the scan judged the file
                        report((generation, row, None))
            finally:
                if cache is not None:
                    cache.save_index()
            return None

        self.task = start_task(task, "thumbnails", on_event=self._on_thumb, parent=self)
        self.task.ended.connect(self._on_ended)

    def _on_thumb(self, payload) -> None:
        generation, row, image = payload
        if generation != self.generation:
            return
        self.done.add(row)
        if image is not None:
            self.ready.emit(row, image)

    def _on_ended(self) -> None:
        if self.task is not None and self.task.cancelled:  # the app is closing: do not start again
            with self._lock:
                self._queue.clear()
        elif self.pending():  # requests that arrived while the worker was finishing
            self._start()
