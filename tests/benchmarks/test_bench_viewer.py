"""Viewer pan/zoom speed on a 5000x4000 mammogram, offscreen (goal: >= 30 frames per second).

The viewer draws the block-mean pyramid level that matches the zoom, in 1024-pixel tiles
(only the visible ones are painted, each rendered once). Baselines in the same run:
area averaging of the same quality recomputed for every view change (pyqtgraph's
``autoDownsample``), and a plain ImageItem holding the full image, which Qt scales by
striding (fast, but single-pixel detail such as a microcalcification can vanish). Each frame moves or zooms the view and repaints the widget
synchronously. Prints both rates (first pass, then the best of three interleaved
passes) and their ratio.

Run: pytest -m benchmark tests/benchmarks/test_bench_viewer.py -s
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.benchmark

SHAPE = (5000, 4000)
FRAMES = 60


def _ranges(width_mm: float, height_mm: float):
    """A pan/zoom path: zoom in from the whole image to 1/8 of it and back, panning across."""
    out = []
    for i in range(FRAMES):
        t = i / (FRAMES - 1)
        zoom = 2 ** (3 * (1 - abs(2 * t - 1)))  # 1 -> 8 -> 1
        w, h = width_mm / zoom, height_mm / zoom
        cx = width_mm * (0.3 + 0.4 * t)
        cy = height_mm * (0.5 + 0.2 * np.sin(6 * t))
        out.append(((cx - w / 2, cx + w / 2), (cy - h / 2, cy + h / 2)))
    return out


def _fps(widget, viewbox, ranges, app) -> float:
    start = time.perf_counter()
    for x_range, y_range in ranges:
        viewbox.setRange(xRange=x_range, yRange=y_range, padding=0)
        widget.repaint()  # one synchronous paint of the whole scene per frame
        app.processEvents()
    return len(ranges) / (time.perf_counter() - start)


def test_pan_zoom_fps_pyramid_vs_full_image():
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from arfl_studio.gui.widgets.image_view import MammogramView

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    image = rng.random(SHAPE, dtype=np.float32)
    spacing = (0.07, 0.07)
    ranges = _ranges(SHAPE[1] * spacing[1], SHAPE[0] * spacing[0])

    view = MammogramView("bench")
    view.resize(1000, 1000)
    view.show()
    start = time.perf_counter()
    view.set_image(image, spacing=spacing)
    load_s = time.perf_counter() - start
    app.processEvents()
    first_viewer = _fps(view.graphics.viewport(), view.view, ranges, app)  # tiles rendered as first seen

    def plain_view(auto_downsample: bool):
        widget = pg.GraphicsLayoutWidget()
        widget.resize(1000, 1000)
        box = widget.addViewBox(lockAspect=True, invertY=True)
        item = pg.ImageItem(image, axisOrder="row-major", levels=(0, 1), autoDownsample=auto_downsample)
        item.setRect(0, 0, SHAPE[1] * spacing[1], SHAPE[0] * spacing[0])
        box.addItem(item)
        widget.show()
        app.processEvents()
        return widget, box

    # same quality (area averaging), recomputed for every view change: pyqtgraph's autoDownsample
    averaged, averaged_box = plain_view(True)
    # striding (Qt's unsmoothed scaling of the full image): fast, but drops single-pixel detail
    plain, box = plain_view(False)
    first_plain = _fps(plain.viewport(), box, ranges, app)  # the whole image rendered on the first frame
    # best of three interleaved passes: the machine is shared, the best pass is the least disturbed
    fps_viewer, fps_plain, fps_averaged = 0.0, 0.0, 0.0
    for _ in range(3):
        fps_viewer = max(fps_viewer, _fps(view.graphics.viewport(), view.view, ranges, app))
        fps_plain = max(fps_plain, _fps(plain.viewport(), box, ranges, app))
        fps_averaged = max(fps_averaged, _fps(averaged.viewport(), averaged_box, ranges, app))

    print(
        f"\nviewer pan/zoom on {SHAPE[0]}x{SHAPE[1]}: {fps_viewer:.1f} frames/s with the block-mean pyramid "
        f"(first pass {first_viewer:.1f}; {len(view.pyramid.levels)} levels built in {load_s:.2f} s), "
        f"{fps_averaged:.1f} frames/s area-averaging every frame (pyqtgraph autoDownsample; ratio "
        f"{fps_viewer / fps_averaged:.1f}x), {fps_plain:.1f} frames/s striding the full image "
        f"(first pass {first_plain:.1f}; ratio {fps_viewer / fps_plain:.2f}x)"
    )
    for widget in (view, plain, averaged):
        widget.close()
    assert fps_viewer > fps_averaged
