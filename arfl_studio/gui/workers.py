"""One worker pattern for every long task: scanning, demo data, training, attack, saliency.

A *task* is a plain function ``task(report, cancel) -> result``. It calls the Qt-free
core (which reports progress through a callback and polls ``cancel``, a
``threading.Event``) and forwards what it wants the UI to see through
``report(payload, lossy=False)``. Payloads must be plain data (numbers, numpy copies,
dataclasses of those), never tensors the core still uses.

:func:`start_task` moves a :class:`Worker` onto its own ``QThread``. The returned
:class:`TaskHandle` lives on the UI thread and re-emits the worker's signals there,
so callbacks never touch widgets from the worker thread. ``lossy`` payloads (step
progress) are throttled in the worker: at most one per ``throttle_s``, the newest
one kept, so a fast loop cannot flood the event loop. The newest is never lost: it
goes out when the interval ends (a trailing flush), before the next plain payload,
and before the task's result, so a live curve ends on the last step.

Every started thread is tracked in :data:`_ACTIVE` until it has finished;
:func:`running_threads` lets the app (close) and the tests (leak check) wait for them.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

Task = Callable[[Callable[..., None], threading.Event], Any]

_ACTIVE: set["TaskHandle"] = set()
_NOTHING = object()  # no throttled payload waiting (None is a payload like any other)


class Worker(QObject):
    """Runs one task on a worker thread; everything it says goes out as a signal."""

    event = Signal(object)
    done = Signal(object)
    failed = Signal(str, str)  # one-line message, traceback text

    def __init__(self, task: Task, throttle_s: float = 0.1):
        super().__init__()
        self._task = task
        self._throttle_s = throttle_s
        self._last_lossy = -math.inf
        # a throttled payload waiting for the interval's end; the lock keeps the order of
        # emissions from the task's thread and the flush timer's
        self._lock = threading.Lock()
        self._pending: Any = _NOTHING
        self._flush_timer: threading.Timer | None = None
        self.cancel_event = threading.Event()

    def report(self, payload: Any, lossy: bool = False) -> None:
        with self._lock:
            if lossy:
                now = time.perf_counter()
                wait = self._last_lossy + self._throttle_s - now
                if wait > 0:
                    if self._pending is _NOTHING:
                        self._flush_timer = threading.Timer(wait, self._flush)
                        self._flush_timer.daemon = True
                        self._flush_timer.start()
                    self._pending = payload  # the newest replaces an older one still waiting
                    return
                self._pending = _NOTHING  # superseded by this newer one
                self._last_lossy = now
            else:
                self._emit_pending()  # the progress it followed arrives first
            self.event.emit(payload)

    def _flush(self) -> None:
        """The trailing flush: the newest throttled payload, once its interval has passed."""
        with self._lock:
            if self._pending is not _NOTHING:
                self._last_lossy = time.perf_counter()
                self._emit_pending()

    def _emit_pending(self) -> None:
        payload, self._pending = self._pending, _NOTHING
        if payload is not _NOTHING:
            self.event.emit(payload)

    def _finish_reports(self) -> None:
        """Deliver what is still throttled and stop the flush timer: nothing may follow the result."""
        with self._lock:
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            self._emit_pending()

    @Slot()
    def run(self) -> None:
        try:
            result = self._task(self.report, self.cancel_event)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the user
            self._finish_reports()
            message = str(exc).strip() or type(exc).__name__
            self.failed.emit(f"{type(exc).__name__}: {message}", traceback.format_exc())
        else:
            self._finish_reports()
            self.done.emit(result)
        finally:
            # quit from the worker thread itself: a queued quit would need the UI event
            # loop, and a UI thread blocked in wait() (closing the window) would deadlock
            QThread.currentThread().quit()


class TaskHandle(QObject):
    """The UI-thread side of one running task."""

    event = Signal(object)
    done = Signal(object)
    failed = Signal(str, str)
    ended = Signal()  # after done/failed, once the thread has stopped

    def __init__(self, task: Task, name: str, throttle_s: float = 0.1, parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.thread = QThread()
        self.thread.setObjectName(f"arfl-{name}")
        self.worker = Worker(task, throttle_s)
        self.worker.moveToThread(self.thread)
        self.worker.event.connect(self._on_event)
        self.worker.done.connect(self._on_done)
        self.worker.failed.connect(self._on_failed)
        self.thread.started.connect(self.worker.run)
        self.thread.finished.connect(self._on_thread_finished)
        self.outcome: str | None = None  # "done", "failed"
        self.result: Any = None
        self.error: str | None = None

    # the worker's signals arrive here, queued onto the UI thread
    @Slot(object)
    def _on_event(self, payload: Any) -> None:
        self.event.emit(payload)

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        self.outcome, self.result = "done", result
        self.done.emit(result)

    @Slot(str, str)
    def _on_failed(self, message: str, details: str) -> None:
        self.outcome, self.error = "failed", message
        self.failed.emit(message, details)

    @Slot()
    def _on_thread_finished(self) -> None:
        _ACTIVE.discard(self)
        self.worker.deleteLater()
        self.ended.emit()

    def start(self) -> "TaskHandle":
        _ACTIVE.add(self)
        self.thread.start()
        return self

    def cancel(self) -> None:
        self.worker.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.worker.cancel_event.is_set()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 30000) -> bool:
        """Block until the thread has stopped (call ``cancel`` first to make it quick)."""
        return self.thread.wait(ms) if self.thread.isRunning() else True


def start_task(
    task: Task, name: str, *, on_event=None, on_done=None, on_error=None, throttle_s: float = 0.1, parent: QObject | None = None
) -> TaskHandle:
    """Run ``task(report, cancel)`` on a new QThread and return its handle."""
    handle = TaskHandle(task, name, throttle_s, parent)
    if on_event is not None:
        handle.event.connect(on_event)
    if on_done is not None:
        handle.done.connect(on_done)
    if on_error is not None:
        handle.failed.connect(on_error)
    return handle.start()


def running_threads() -> list[TaskHandle]:
    return [h for h in list(_ACTIVE) if h.thread.isRunning()]


def cancel_all_and_wait(ms: int = 30000) -> bool:
    """Ask every task to stop and wait for each thread; True when all have stopped."""
    handles = list(_ACTIVE)
    for handle in handles:
        handle.cancel()
    deadline = time.perf_counter() + ms / 1000
    ok = True
    for handle in handles:
        left = max(0, int((deadline - time.perf_counter()) * 1000))
        ok = handle.wait(left) and ok
    return ok
