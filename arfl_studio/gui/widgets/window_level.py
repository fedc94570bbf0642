"""Window/level by mouse, as in radiology viewers.

Drag with the right (or middle) button: horizontal motion changes the window width,
vertical motion the level (centre); the left button keeps panning. A double-click
resets window/level and fits the image. Levels are display values (the data layer's pixels,
[0, 1] for the header's first window); the view shows them in modality units
(``data.dicom.windows``).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal

WL_BUTTONS = (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton)
MIN_WIDTH = 1e-4


def drag_levels(levels: tuple[float, float], dx: float, dy: float, span: float, pixels: int = 500) -> tuple[float, float]:
    """New (low, high) after a drag of (dx, dy) screen pixels: ``pixels`` px change the width
    (rightwards: wider) or the level (downwards: higher, a darker picture) by ``span``."""
    lo, hi = levels
    width = max(MIN_WIDTH, (hi - lo) + dx * span / pixels)
    centre = (hi + lo) / 2 + dy * span / pixels
    return centre - width / 2, centre + width / 2


class WindowLevelViewBox(pg.ViewBox):
    """A ViewBox whose right/middle drag reports window/level motion instead of zooming."""

    window_level_dragged = Signal(float, float)  # dx, dy in screen pixels since the last event
    reset_requested = Signal()

    def mouseDragEvent(self, ev, axis=None):
        if ev.button() in WL_BUTTONS:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_level_dragged.emit(float(delta.x()), float(delta.y()))
            return
        super().mouseDragEvent(ev, axis)

    def mouseClickEvent(self, ev):
        if ev.double() and ev.button() == Qt.MouseButton.LeftButton:
            ev.accept()
            self.reset_requested.emit()
            return
        if ev.button() in WL_BUTTONS:  # no context menu, no zoom-out on a right click
            ev.accept()
            return
        super().mouseClickEvent(ev)
