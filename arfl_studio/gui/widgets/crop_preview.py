"""The selected image with the preprocessing crop box drawn over it (native space).

The image is decoded and the crop geometry computed in a worker
(``compute_geometry`` with the default ``PreprocessSettings``, i.e. what training
uses unless the config says otherwise); the view shows a downsampled copy placed on
the native pixel grid, so the box is drawn in native coordinates
(``Geometry.native_box()``: flip undone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QTimer
from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QVBoxLayout, QWidget

from arfl_studio.gui.workers import TaskHandle, start_task

PREVIEW_PX = 512  # longest side of the displayed copy


def crop_preview_task(path: str | Path):
    def task(report, cancel):
        from arfl_studio.data import PreprocessSettings
        from arfl_studio.data.dicom.decode_pool import read_mammogram_isolated
        from arfl_studio.data.preprocess.transform import compute_geometry

        settings = PreprocessSettings()
        mammogram = read_mammogram_isolated(path)
        pixels = mammogram.pixels
        geometry = compute_geometry(pixels, settings, spacing=mammogram.pixel_spacing)
        step = max(1, int(np.ceil(max(pixels.shape) / PREVIEW_PX)))
        shown = (np.clip(pixels[::step, ::step], 0, 1) * 255).astype(np.uint8).copy()
        return {
            "path": str(path),
            "image": shown,
            "shape": tuple(pixels.shape),
            "box": geometry.native_box(),
            "flip": geometry.flip,
            "crop": settings.crop,
        }

    return task


class CropPreview(QWidget):
    """Shows one image and its crop box; ``show_path`` loads in a worker (latest request wins)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.caption = QLabel("Select an image to see the crop that training uses.")
        self.caption.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.image)
        self.box = QGraphicsRectItem()
        pen = pg.mkPen((255, 200, 0), width=2)
        pen.setCosmetic(True)
        self.box.setPen(pen)
        self.box.setZValue(10)
        self.box.setVisible(False)
        self.view.addItem(self.box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.caption)
        self.task: TaskHandle | None = None
        self.shown: dict | None = None
        self._wanted: str | None = None
        self._loading: str | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(120)  # arrow keys through the list: load only where the user stops
        self._debounce.timeout.connect(self._load)

    def show_path(self, path: str | Path | None) -> None:
        self._wanted = str(path) if path is not None else None
        self._debounce.start()

    def native_box(self) -> tuple[int, int, int, int] | None:
        """(row0, row1, col0, col1) drawn now, in native pixels; None when nothing is shown."""
        if not self.box.isVisible():
            return None
        r = self.box.rect()
        return int(round(r.top())), int(round(r.bottom())), int(round(r.left())), int(round(r.right()))

    def _load(self) -> None:
        if self._wanted is None or (self.task is not None and self.task.is_running()):
            return  # a running load ends in _on_ended, which loads the newest wish
        self._loading = self._wanted
        self.caption.setText(f"Loading {Path(self._wanted).name} …")
        self.task = start_task(crop_preview_task(self._wanted), "crop-preview", on_done=self._on_done, on_error=self._on_error, parent=self)
        self.task.ended.connect(self._on_ended)

    def _on_ended(self) -> None:
        if self.task is not None and self.task.cancelled:
            return
        if self._wanted is not None and self._wanted != self._loading:
            self._load()

    def _on_done(self, result: dict) -> None:
        if result["path"] != self._wanted:
            return
        self.shown = result
        rows, cols = result["shape"]
        self.image.setImage(result["image"], levels=(0, 255))
        self.image.setRect(QRectF(0, 0, cols, rows))
        r0, r1, c0, c1 = result["box"]
        self.box.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
        self.box.setVisible(True)
        self.view.autoRange(padding=0.02)
        kept = (r1 - r0) * (c1 - c0) / max(rows * cols, 1)
        self.caption.setText(
            f"{Path(result['path']).name}: {cols}×{rows} px; crop ({result['crop']}) keeps "
            f"rows {r0}–{r1}, columns {c0}–{c1} ({kept:.0%} of the area)"
            + ("; flipped so the chest wall is on the left" if result["flip"] else "")
        )

    def _on_error(self, message: str, _details: str) -> None:
        self.box.setVisible(False)
        self.image.clear()
        self.shown = None
        self.caption.setText(f"Cannot show this image: {message}")
