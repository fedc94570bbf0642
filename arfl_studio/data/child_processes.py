"""Worker processes that never outlive their parent, and pools that stop at once on Ctrl-C.

A parent killed with ``kill -9`` cannot tell its DataLoader or decode workers to stop, and a
worker busy decoding a 3000x4000 mammogram (or holding 800 MB of batches) would run on. Each
worker therefore starts a watchdog thread (:func:`watch_parent`) that ends the process within
``PARENT_CHECK_S`` once its parent is gone (``os.getppid()`` changes when the parent dies).
Pool workers also ignore SIGINT: Ctrl-C in a terminal reaches the whole process group, and the
parent alone decides what to stop and what to say (the workers would print tracebacks).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing.context as mpc
import os
import signal
import threading
import time

PARENT_CHECK_S = 0.5


def _watch(parent: int, interval_s: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)  # the parent is gone: nobody reads our results; exit without cleanup
        time.sleep(interval_s)


def watch_parent(parent: int | None = None, interval_s: float = PARENT_CHECK_S) -> None:
    """Exit this (worker) process when its parent dies; a no-op where parents cannot be watched.

    ``parent``: the parent's pid as the parent saw it (``os.getpid()`` there). Pass it: a worker
    still importing torch when its parent is killed would otherwise take its new parent (init) for
    the real one and never notice.
    """
    if os.name != "posix":
        return  # Windows: a killed parent's job object or pipes end the workers
    parent = os.getppid() if parent is None else parent
    threading.Thread(target=_watch, args=(parent, interval_s), name="parent-watchdog", daemon=True).start()


def pool_worker_init(parent: int | None = None) -> None:
    """Initializer of the decode/preprocess process pools: parent watchdog, SIGINT left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(parent)


def loader_worker_init(worker_id: int, parent: int | None = None) -> None:
    """``worker_init_fn`` of the DataLoaders (torch handles SIGINT itself): the parent watchdog.
    Give it as :func:`loader_worker_init_fn` so the parent's pid travels with it."""
    watch_parent(parent)


def loader_worker_init_fn():
    """``worker_init_fn`` for a DataLoader created in this process: :func:`loader_worker_init` with our pid."""
    return functools.partial(loader_worker_init, parent=os.getpid())


def _start_ignoring_sigint(start):
    @functools.wraps(start)
    def quiet_start(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return start(self)  # signal dispositions can be changed on the main thread only (no Ctrl-C there)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return start(self)
        finally:
            signal.signal(signal.SIGINT, previous)

    return quiet_start


class QuietSpawnProcess(mpc.SpawnProcess):
    """A spawn process that starts with SIGINT ignored (see :func:`quiet_spawn_context`)."""

    start = _start_ignoring_sigint(mpc.SpawnProcess.start)


class QuietSpawnContext(mpc.SpawnContext):
    Process = QuietSpawnProcess


def quiet_spawn_context() -> QuietSpawnContext:
    """The spawn start method, with SIGINT ignored in the new process from its first instruction.

    An ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt
    handler: a worker still importing torch when Ctrl-C comes prints no traceback. (A Ctrl-C within
    the few milliseconds of the fork itself is dropped.)
    """
    return QuietSpawnContext()


@contextlib.contextmanager
def guarded_pool(workers: int):
    """A spawn ``ProcessPoolExecutor`` (safe beside Qt and torch) whose workers are guarded as above.

    Leaving the block normally waits for the pool; leaving it by an exception (Ctrl-C) stops the
    pool at once: queued work is dropped and the workers are ended instead of being waited for
    (their results were not going to be used).
    """
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=quiet_spawn_context(), initializer=pool_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def stop_pool(pool) -> None:
    """Stop a process pool at once: queued work dropped, busy workers ended rather than waited for."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=2)
