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


def test_the_newest_throttled_event_arrives_before_the_result(qtbot):
    """A live curve ends on the last step: the throttle keeps the newest event, not the first."""
    seen = []

    def task(report, cancel):
        for i in range(200):
            report(("step", i), lossy=True)
        return "done"

    handle = wait_task(qtbot, start_task(task, "steps", on_event=seen.append, throttle_s=60))
    assert handle.result == "done"
    assert seen == [("step", 0), ("step", 199)]  # the first at once, the newest at the end; none in between


def test_a_throttled_event_is_flushed_when_its_interval_ends(qtbot):
    """While the task is busy (no more reports), the newest progress still reaches the UI."""
    seen, release = [], threading.Event()

    def task(report, cancel):
        for i in range(50):
            report(i, lossy=True)
        release.wait(10)

    handle = start_task(task, "busy", on_event=seen.append, throttle_s=0.05)
    try:
        qtbot.waitUntil(lambda: bool(seen) and seen[-1] == 49, timeout=3000)
        assert handle.is_running()  # delivered by the trailing flush, not by the task ending
    finally:
        release.set()
        wait_task(qtbot, handle)
    assert seen[0] == 0 and seen.count(49) == 1


def test_a_plain_event_follows_the_throttled_progress_it_came_after(qtbot):
    seen = []

    def task(report, cancel):
        for i in range(20):
            report(("step", i), lossy=True)
        report(("epoch", 0))
        report(("step", 20), lossy=True)  # within the interval again: waits for the end

    wait_task(qtbot, start_task(task, "order", on_event=seen.append, throttle_s=60))
    qtbot.waitUntil(lambda: len(seen) == 4)
    assert seen == [("step", 0), ("step", 19), ("epoch", 0), ("step", 20)]
