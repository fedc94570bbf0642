"""Lesion marks drawn on a mammogram view: outlines, boxes and points, coloured by pathology.

The marks sit in the view's own coordinates (mm when the pixel spacing is known), so
they follow pan, zoom and linked views like the image; they are drawn above the image
and below the saliency/δ overlay (z 5 of 0 .. 10), with a cosmetic pen (the same
width on screen at any zoom).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem

# radiology convention: malignant red, benign yellow, unknown (BI-RADS only, or none) cyan
PATHOLOGY_COLOURS = {"malignant": "#ff3030", "benign": "#ffd700", None: "#00e5ff"}
LESION_Z = 5
POINT_RADIUS_PX = 5  # screen pixels: a one-pixel calcification mark stays visible


def pathology_colour(pathology: str | None) -> QColor:
    return QColor(PATHOLOGY_COLOURS.get(pathology, PATHOLOGY_COLOURS[None]))


class LesionLayer:
    """The lesion marks of one view; ``shapes`` as ``data.datasets.lesions.lesion_outlines`` gives them."""

    def __init__(self, view: pg.ViewBox):
        self.view = view
        self.items: list = []
        self.shapes: list[dict] = []
        self.visible = True

    def set_shapes(self, shapes: list[dict] | None, pixel_size: tuple[float, float]) -> None:
        """Replace the marks; ``pixel_size`` (row, col) in view units maps pixel indices onto the view."""
        self.clear()
        self.shapes = list(shapes or [])
        sy, sx = pixel_size
        points = []
        for shape in self.shapes:
            colour = pathology_colour(shape.get("pathology"))
            if shape["kind"] == "point":
                ((r, c),) = shape["points"]
                points.append(
                    {
                        "pos": ((c + 0.5) * sx, (r + 0.5) * sy),
                        "pen": pg.mkPen(colour, width=2),
                        "brush": QBrush(Qt.BrushStyle.NoBrush),
                        "data": shape["label"],
                    }
                )
            elif shape["kind"] == "outline" and shape["points"]:
                path = QPainterPath()
                first, *rest = [QPointF((c + 0.5) * sx, (r + 0.5) * sy) for r, c in shape["points"]]
                path.moveTo(first)
                for p in rest:
                    path.lineTo(p)
                path.closeSubpath()
                item = QGraphicsPathItem(path)
                pen = QPen(colour, 2)
                pen.setCosmetic(True)
                item.setPen(pen)
                item.setToolTip(shape["label"])
                self._add(item)
        if points:
            scatter = pg.ScatterPlotItem(spots=points, size=2 * POINT_RADIUS_PX, symbol="o", pxMode=True)
            self._add(scatter)

    def _add(self, item) -> None:
        item.setZValue(LESION_Z)
        item.setVisible(self.visible)
        self.view.addItem(item)
        self.items.append(item)

    def set_visible(self, visible: bool) -> None:
        self.visible = bool(visible)
        for item in self.items:
            item.setVisible(self.visible)

    def clear(self) -> None:
        for item in self.items:
            self.view.removeItem(item)
        self.items, self.shapes = [], []

    def drawn(self) -> list:
        """The graphics items on screen (tests)."""
        return [i for i in self.items if i.isVisible()]
