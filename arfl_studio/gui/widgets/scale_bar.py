"""A scale bar whose length follows the zoom: a round number of mm (1, 2 or 5 x 10^k)."""

from __future__ import annotations

import math

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF


def nice_length(span: float, fraction: float = 0.2) -> float:
    """A round length (1, 2, 5 x 10^k) close to ``fraction`` of ``span``."""
    target = span * fraction
    if not target > 0 or not math.isfinite(target):
        return 1.0
    power = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * power <= target:
            return m * power
    return power


class ScaleBar(pg.ScaleBar):
    """Anchored in the view's lower-right corner; ``unit`` names the view's coordinates ("mm" or "px")."""

    def __init__(self, unit: str = "mm"):
        super().__init__(size=10, width=4, brush="w", pen="w", suffix="", offset=(-16, -16))
        self.unit = unit

    def set_unit(self, unit: str) -> None:
        self.unit = unit
        self.updateBar()

    def updateBar(self):
        view = self.parentItem()
        if view is None:
            return
        x_range = view.viewRange()[0]
        self.size = nice_length(x_range[1] - x_range[0])
        self.text.setText(f"{self.size:g} {self.unit}")
        p1 = view.mapFromViewToItem(self, QPointF(0, 0))
        p2 = view.mapFromViewToItem(self, QPointF(self.size, 0))
        w = (p2 - p1).x()
        self.bar.setRect(QRectF(-w, 0, w, self._width))
        self.text.setPos(-w / 2.0, 0)
