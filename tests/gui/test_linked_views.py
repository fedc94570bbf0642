"""Linked views zoom and pan by physical position (issue 25 item 10): the four-view hanging's
images, with different pixel spacings on screens of different shapes, agree after 50 random
zoom/pan steps on any of them (pyqtgraph's own axis links drifted 40 % apart here)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QGridLayout, QWidget

from arfl_studio.gui.widgets.image_view import MammogramView
from arfl_studio.gui.widgets.view_link import ViewLink

SPACINGS = ((0.07, 0.07), (0.1, 0.12), (0.05, 0.05), (0.2, 0.1))  # mm (row, column)


def _physical(view):
    """(centre in mm, mm per screen pixel along x and y) of what the view shows."""
    (x0, x1), (y0, y1) = view.view.viewRange()
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2]), np.array([(x1 - x0) / view.view.width(), (y1 - y0) / view.view.height()])


def test_fifty_random_steps_keep_linked_views_together(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    grid = QGridLayout(host)
    views = [MammogramView(name) for name in ("RCC", "LCC", "RMLO", "LMLO")]
    for i, view in enumerate(views):
        grid.addWidget(view, i // 2, i % 2)
    grid.setColumnStretch(0, 3)  # screens of different shapes
    grid.setColumnStretch(1, 2)
    grid.setRowStretch(1, 2)
    host.resize(900, 700)
    host.show()
    rng = np.random.default_rng(3)
    for view, spacing in zip(views, SPACINGS):
        view.set_image(rng.random((400, 300)).astype(np.float32), spacing=spacing)
    qtbot.wait(50)
    link = ViewLink(views)
    assert len({(v.view.width(), v.view.height()) for v in views}) == 4
    for _ in range(50):
        view = views[int(rng.integers(len(views)))]
        (x0, x1), (y0, y1) = view.view.viewRange()
        if rng.random() < 0.5:  # the wheel: zoom about a point
            f = float(np.exp(rng.normal(0, 0.3)))
            view.view.scaleBy(s=(f, f), center=QPointF(x0 + (x1 - x0) * rng.random(), y0 + (y1 - y0) * rng.random()))
        else:  # a drag: pan
            view.view.translateBy(x=float(rng.normal(0, 0.2)) * (x1 - x0), y=float(rng.normal(0, 0.2)) * (y1 - y0))
        centre, scale = _physical(views[0])
        for other in views[1:]:
            c, s = _physical(other)
            assert np.allclose(c, centre, rtol=1e-6, atol=1e-6 * np.abs(centre).max())
            assert np.allclose(s, scale[0], rtol=1e-6)  # mm per screen pixel: the same in every view and axis
    assert link.viewport is not None and link.viewport.mm_per_px == pytest.approx(scale[0], rel=1e-6)
    # a view no longer linked keeps its own zoom
    link.set_views(views[:1])
    before = views[1].view.viewRange()
    views[0].view.scaleBy(s=(0.5, 0.5))
    assert np.allclose(views[1].view.viewRange(), before)
