"""The mammogram view: window/level (histogram LUT), invert, zoom/pan, one overlay.

The overlay (saliency map or perturbation) is a second ``ImageItem`` in the same view
box, drawn with a colormap lookup table and an opacity; the base image keeps its own
gray levels from the histogram widget. :func:`blend` produces the same picture as
pixels for export.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

DIVERGING = "CET-D1"  # blue - white - red, for the signed perturbation
SEQUENTIAL = ("inferno", "viridis", "magma", "plasma", "CET-L17")


def colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def blend(gray: np.ndarray, heat: np.ndarray | None, cmap: str = "inferno", opacity: float = 0.5,
          levels: tuple[float, float] = (0.0, 1.0), gray_levels: tuple[float, float] = (0.0, 1.0),
          invert: bool = False) -> np.ndarray:
    """Base image through window/level (and invert) with the overlay blended in: uint8 RGB (H, W, 3)."""
    lo, hi = gray_levels
    g = np.clip((np.asarray(gray, dtype=np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)
    if invert:
        g = 1 - g
    rgb = np.repeat(g[..., None], 3, axis=2)
    if heat is not None and opacity > 0:
        hlo, hhi = levels
        h = np.clip((np.asarray(heat, dtype=np.float32) - hlo) / max(hhi - hlo, 1e-6), 0, 1)
        lut = colormap(cmap).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.float32) / 255
        colour = lut[(h * 255).astype(np.int64)]
        rgb = (1 - opacity) * rgb + opacity * colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


class MammogramView(QWidget):
    """One image with title, optional histogram LUT, overlay and caption."""

    def __init__(self, title: str = "", histogram: bool = True, parent=None):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold;")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.overlay = pg.ImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self.overlay.setOpacity(0.5)
        self.view.addItem(self.image)
        self.view.addItem(self.overlay)
        self.histogram = None
        if histogram:
            self.histogram = pg.HistogramLUTItem(image=self.image)
            self.histogram.setMaximumWidth(110)
            self.graphics.addItem(self.histogram)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.caption)
        self.gray: np.ndarray | None = None
        self.heat: np.ndarray | None = None
        self.cmap = "inferno"
        self.heat_levels = (0.0, 1.0)
        self.inverted = False

    # base image -------------------------------------------------------
    def set_image(self, gray: np.ndarray | None, auto_range: bool = True) -> None:
        self.gray = None if gray is None else np.asarray(gray, dtype=np.float32)
        if self.gray is None:
            self.image.clear()
            return
        levels = self.image.getLevels() if self.image.image is not None else None
        self.image.setImage(self.gray, autoLevels=levels is None)
        if levels is None:
            self.image.setLevels((0.0, 1.0))
        self._apply_gray_lut()
        if auto_range:
            self.view.autoRange(padding=0.02)

    def set_invert(self, invert: bool) -> None:
        self.inverted = bool(invert)
        self._apply_gray_lut()

    def _apply_gray_lut(self) -> None:
        ramp = np.linspace(0, 255, 256).astype(np.uint8)
        if self.inverted:
            ramp = ramp[::-1]
        lut = np.stack([ramp] * 3, axis=1)
        if self.histogram is not None:
            cmap = pg.ColorMap(np.linspace(0, 1, 2), [lut[0], lut[-1]])
            self.histogram.gradient.setColorMap(cmap)
        else:
            self.image.setLookupTable(lut)

    def gray_levels(self) -> tuple[float, float]:
        levels = self.image.getLevels()
        if levels is None:
            return (0.0, 1.0)
        return float(levels[0]), float(levels[1])

    # overlay ----------------------------------------------------------
    def set_overlay(self, heat: np.ndarray | None, cmap: str = "inferno", levels=(0.0, 1.0)) -> None:
        self.heat = None if heat is None else np.asarray(heat, dtype=np.float32)
        self.cmap, self.heat_levels = cmap, tuple(levels)
        if self.heat is None:
            self.overlay.clear()
            self.overlay.setVisible(False)
            return
        self.overlay.setImage(self.heat, levels=levels, lut=colormap(cmap).getLookupTable(0.0, 1.0, 256))
        self.overlay.setVisible(True)

    def set_opacity(self, opacity: float) -> None:
        self.overlay.setOpacity(float(opacity))

    def opacity(self) -> float:
        return float(self.overlay.opacity())

    def overlay_visible(self) -> bool:
        return self.heat is not None and self.overlay.isVisible() and self.overlay.image is not None

    def blended(self) -> np.ndarray | None:
        """What the view shows, as uint8 RGB pixels (overlay blended in explicitly)."""
        if self.gray is None:
            return None
        heat = self.heat if self.overlay_visible() else None
        return blend(self.gray, heat, self.cmap, self.opacity(), self.heat_levels, self.gray_levels(), self.inverted)

    def link(self, other: "MammogramView") -> None:
        """Zoom and pan together with ``other``."""
        self.view.setXLink(other.view)
        self.view.setYLink(other.view)
