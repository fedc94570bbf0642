"""GUI responsiveness and memory while training (marker ``benchmark``).

Run: ``QT_QPA_PLATFORM=offscreen pytest -m benchmark tests/benchmarks/test_bench_gui.py -s``

1. Event-loop stalls: a 5 ms QTimer probe on the UI thread records how late each
   tick arrives, first with the window idle, then while the Training pane runs a
   small-CNN comparison (A and F: PGD in the loop) in its worker. The issue's targets
   on this machine: p99 < 20 ms, max < 50 ms. Also: plot redraws stay throttled
   (a few per second) and the number of plot items never grows.
2. Memory: a 200-epoch run of a tiny model; the process RSS of the last 150
   epochs may not grow by more than a small fraction of what the app holds.
3. A 2,000-image folder loading in the Dataset pane (scan, list, thumbnails as rows come
   into view while the list is scrolled): no UI-thread step of 50 ms or more.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytestmark = pytest.mark.benchmark


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class StallProbe:
    def __init__(self, interval_ms: int = 5):
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.lates: list[float] = []
        self.big: list[tuple[float, float]] = []  # (time, stall) of stalls > 30 ms
        self._last = None
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self):
        now = time.perf_counter()
        if self._last is not None:
            late = max(0.0, now - self._last - self.interval)
            self.lates.append(late)
            if late > 0.03:
                self.big.append((now, late))
        self._last = now

    def start(self):
        self.lates.clear()
        self.big.clear()
        self._last = None
        self.timer.start()

    def stop(self) -> dict:
        self.timer.stop()
        ms = np.array(self.lates) * 1000
        return {"ticks": len(ms), "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path_factory.mktemp("qs")))
    from arfl_studio.gui.app import make_app

    return make_app([])


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from arfl_studio.data import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=16, size=(128, 104), seed=0)


def _pane(qtbot, demo, tmp_path, **settings):
    from arfl_studio.gui.panes.training_pane import TrainingPane

    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.resize(1280, 800)
    pane.show()
    pane.runs_root = tmp_path
    pane.set_dataset(str(demo))
    pane.form.set_values(**settings)
    return pane


def _finish(qtbot, pane, handle):
    pane.stop()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=60_000)
    qtbot.waitUntil(lambda: handle.outcome is not None, timeout=10_000)


def test_ui_thread_stalls_while_training(app, qtbot, demo, tmp_path):
    pane = _pane(
        qtbot,
        demo,
        tmp_path,
        backbone="small_cnn",
        image_size=64,
        epochs=50,
        batch_size=16,
        lr=1e-3,
        folds=2,
        methods=("A", "F"),
        eps=0.01,
        steps=7,
        eval_eps=1e-4,
        device="cpu",
    )
    probe = StallProbe()
    probe.start()
    qtbot.wait(3000)
    idle = probe.stop()
    items_before = None
    probe.start()
    handle = pane.start()
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: bool(pane.history), timeout=120_000)  # the first epoch is in
    items_before = pane.loss_plot.item_count() + pane.auc_plot.item_count()
    redraws_before = pane.loss_plot.redraws + pane.auc_plot.redraws
    t1 = time.perf_counter()
    qtbot.wait(20_000)
    seconds = time.perf_counter() - t1
    redraws = pane.loss_plot.redraws + pane.auc_plot.redraws - redraws_before
    busy = probe.stop()
    print(
        "\nbig stalls (s after start, ms):",
        [(round(t - t0, 2), round(d * 1000)) for t, d in probe.big],
        "first epoch at",
        round(t1 - t0, 2),
    )
    epochs_seen = sum(len(h["epoch"]) for h in pane.history.values())
    _finish(qtbot, pane, handle)
    items_after = pane.loss_plot.item_count() + pane.auc_plot.item_count()
    print(f"\nUI-thread stalls, 5 ms probe, idle:     {idle}")
    print(f"UI-thread stalls, 5 ms probe, training: {busy} over {time.perf_counter() - t0:.1f} s, {epochs_seen} epochs reported")
    print(
        f"plot setData calls: {redraws} in {seconds:.1f} s ({redraws / seconds:.1f}/s over 9 curves); "
        f"plot items {items_before} -> {items_after}"
    )
    assert epochs_seen >= 2, "the training made no progress during the probe"
    assert items_after == items_before == 6, "plot items must be made once, not per update"
    assert redraws / seconds <= 4 * 9 + 1, "each curve redraws at most 4 times per second"
    assert busy["p99_ms"] < 20 and busy["max_ms"] < 50


def test_memory_flat_over_200_epochs(app, qtbot, demo, tmp_path):
    pane = _pane(
        qtbot,
        demo,
        tmp_path,
        backbone="small_cnn",
        image_size=16,
        epochs=200,
        batch_size=64,
        lr=1e-3,
        folds=2,
        methods=("A",),
        eps=0.01,
        steps=1,
        eval_eps=1e-4,
        device="cpu",
    )
    samples: dict[int, float] = {}

    def on_event(event):
        inner = getattr(event, "event", None)
        if getattr(event, "fold", None) == 0 and type(inner).__name__ == "EpochEvent":
            samples[inner.epoch + 1] = rss_mb()

    handle = pane.start()
    handle.event.connect(on_event)
    t0 = time.perf_counter()
    qtbot.waitUntil(lambda: 200 in samples, timeout=600_000)
    _finish(qtbot, pane, handle)
    start, mid, end = samples[min(samples)], samples[50], samples[200]
    growth = end - mid
    print(
        f"\nRSS: epoch {min(samples)} {start:.1f} MB, epoch 50 {mid:.1f} MB, epoch 200 {end:.1f} MB "
        f"(+{growth:.1f} MB over the last 150 epochs, {growth / mid:.2%}); {time.perf_counter() - t0:.0f} s"
    )
    pane.loss_plot.flush()
    assert pane.loss_plot.points("A") == 200 and pane.loss_plot.item_count() == 1
    assert growth / mid < 0.03, "memory grows with the epochs"


# ---------------------------------------------------------------- a 2,000-image folder


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory, demo):
    """~2,000 DICOM files in one-folder-per-class layout, ~670 patients (copies of the demo with new IDs)."""
    import pydicom

    from arfl_studio.data import scan_dataset

    scan = scan_dataset(demo)
    root = tmp_path_factory.mktemp("big") / "big"
    sources = [(pydicom.dcmread(r.path), "malignant" if r.label else "benign", r.path.name) for r in scan.images]
    originals = [str(ds.PatientID) for ds, _label, _name in sources]
    copies = -(-2000 // len(sources))
    for i in range(copies):
        for (ds, label, name), original in zip(sources, originals):
            patient = f"P{i:03d}-{original}"
            folder = root / label / patient
            folder.mkdir(parents=True, exist_ok=True)
            ds.PatientID = patient
            ds.save_as(folder / f"{len(list(folder.iterdir()))}-{name}")
    return root


def test_no_ui_stall_while_a_2000_image_folder_loads(app, qtbot, big_folder, tmp_path, monkeypatch):
    """Scan, list, summary, fold preview and thumbnails of the rows in view, then scrolling the
    whole list (thumbnails made as rows come into view): no UI-thread step of the pane takes
    50 ms. Two measures: the time of each of the pane's own UI-thread handlers (what the code
    costs, robust to a busy machine), and the 5 ms probe's lateness (what a user feels, which on a
    shared 2-core machine also holds other processes' load: compare with the idle baseline)."""
    from arfl_studio.gui import thumbnails
    from arfl_studio.gui.panes import dataset_pane
    from arfl_studio.gui.widgets import tables

    handler_ms: dict[str, float] = {}

    def timed(cls, name):
        real = getattr(cls, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                ms = (time.perf_counter() - t) * 1000
                handler_ms[name] = max(handler_ms.get(name, 0.0), ms)

        monkeypatch.setattr(cls, name, wrapper)

    for cls, name in (
        (dataset_pane.DatasetPane, "_on_done"),
        (dataset_pane.DatasetPane, "_on_event"),
        (dataset_pane.DatasetPane, "request_visible_thumbnails"),
        (thumbnails.ThumbnailLoader, "_on_thumb"),
        (tables.RowsModel, "set_thumbnail"),
    ):
        timed(cls, name)
    pane = dataset_pane.DatasetPane(thumbnail_cache=tmp_path / "cache")
    qtbot.addWidget(pane)
    pane.resize(1280, 800)
    pane.show()
    import gc

    collections: list[tuple[int, float, float]] = []
    started = {}

    def on_gc(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            collections.append((info["generation"], started["t"], (time.perf_counter() - started.pop("t")) * 1000))

    gc.callbacks.append(on_gc)
    probe = StallProbe()
    probe.start()
    qtbot.wait(2000)
    idle = probe.stop()
    probe.start()
    t0 = time.perf_counter()
    with qtbot.waitSignal(pane.scanned, timeout=600_000) as blocker:
        pane.load(big_folder)
    scanned = time.perf_counter() - t0
    n = len(blocker.args[0].images)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=600_000)
    first_screen = time.perf_counter() - t0
    bar = pane.image_table.verticalScrollBar()
    for value in np.linspace(0, bar.maximum(), 40):  # a user dragging through the list
        bar.setValue(int(value))
        qtbot.wait(50)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=600_000)
    busy = probe.stop()
    gc.callbacks.remove(on_gc)
    print(
        "\ngarbage collections > 20 ms (generation, s after start, ms):",
        [(g, round(t - t0, 2), round(ms)) for g, t, ms in collections if ms > 20],
    )
    made = len(pane.image_model.thumbnails)
    print(
        f"\n{n} images listed in {scanned:.1f} s, first screen of thumbnails at {first_screen:.1f} s, "
        f"{made} thumbnails made while scrolling through the list"
    )
    print(f"UI-thread stalls, 5 ms probe, idle:    {idle}")
    print(f"UI-thread stalls, 5 ms probe, loading: {busy}; stalls > 30 ms: {[(round(t - t0, 2), round(d * 1000)) for t, d in probe.big]}")
    print("slowest call of each UI-thread handler (ms):", {k: round(v, 1) for k, v in handler_ms.items()})
    assert n >= 2000
    assert 0 < made < n, "thumbnails are made for the rows scrolled through, not for every image at once"
    assert set(handler_ms) >= {"_on_done", "_on_thumb", "set_thumbnail", "request_visible_thumbnails"}
    slow = {k: v for k, v in handler_ms.items() if v >= 50}
    assert not slow, f"UI-thread steps of 50 ms or more while the folder loaded: {slow}"
    assert busy["p99_ms"] < 50, f"the UI thread was late by {busy['p99_ms']:.0f} ms at the 99th percentile"
