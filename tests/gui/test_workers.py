"""The one worker pattern: events, results, errors, cancel, throttling, thread tracking."""

import threading
import time

from arfl_studio.gui.workers import running_threads, start_task

from .conftest import wait_task


def test_events_and_result_arrive_on_the_ui_thread(qtbot):
    seen, threads = [], []

    def task(report, cancel):
        for i in range(3):
            report(("item", i))
        return "done"

    def on_event(payload):
        seen.append(payload)
        threads.append(threading.current_thread() is threading.main_thread())

    handle = wait_task(qtbot, start_task(task, "t", on_event=on_event))
    assert handle.outcome == "done" and handle.result == "done"
    qtbot.waitUntil(lambda: len(seen) == 3)
    assert seen == [("item", 0), ("item", 1), ("item", 2)]
    assert all(threads)


def test_error_reaches_the_ui_as_a_message(qtbot):
    errors = []

    def task(report, cancel):
        raise ValueError("bad setting lr=-1")

    handle = wait_task(qtbot, start_task(task, "t", on_error=lambda m, d: errors.append((m, d))))
    assert handle.outcome == "failed"
    qtbot.waitUntil(lambda: bool(errors))
    assert "ValueError: bad setting lr=-1" == errors[0][0]
    assert "Traceback" in errors[0][1]


def test_cancel_is_cooperative_and_quick(qtbot):
    started = threading.Event()

    def task(report, cancel):
        started.set()
        while not cancel.is_set():
            time.sleep(0.005)
        return "stopped"

    handle = start_task(task, "loop")
    assert started.wait(5)
    assert running_threads()
    t0 = time.perf_counter()
    handle.cancel()
    assert handle.wait(5000)
    assert time.perf_counter() - t0 < 1.0
    wait_task(qtbot, handle)
    assert handle.result == "stopped"


def test_lossy_events_are_throttled(qtbot):
    seen = []

    def task(report, cancel):
        for i in range(2000):
            report(i, lossy=True)
        report("last")

    wait_task(qtbot, start_task(task, "flood", on_event=seen.append, throttle_s=0.05))
    qtbot.waitUntil(lambda: "last" in seen)
    assert len(seen) < 50
