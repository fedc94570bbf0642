"""The patient's views beside the hanging: a strip of thumbnails of every image the patient has
(the four-view hanging's first, then XCCL, ML, LM, spot compression, magnification, a second CC ...,
``evaluation.hanging``); clicking one opens it alone in the viewer (the *two models* layout: with a
trained run, its overlay beside it). A view that could not be read shows its reason as a tooltip
and, opened, in place."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QStyle

from arfl_studio.evaluation.hanging import HANGING, hanging_order

THUMB = 52  # px per thumbnail side


def build_strip(pane: Any) -> QListWidget:
    strip = QListWidget()
    strip.setViewMode(QListView.ViewMode.IconMode)
    strip.setIconSize(QSize(THUMB, THUMB))
    strip.setMovement(QListView.Movement.Static)
    strip.setResizeMode(QListView.ResizeMode.Adjust)
    strip.setWrapping(True)
    strip.setMaximumHeight(THUMB + 44)  # one row, then a scroll bar: the header table keeps its room
    strip.setToolTip("The patient's views; click one to open it alone (also views outside the four-view hanging)")
    strip.itemClicked.connect(lambda item: open_view(pane, item.data(Qt.ItemDataRole.UserRole)))
    return strip


def thumbnail(image: dict) -> QIcon:
    """The image's smallest pyramid level through its default window, as an icon."""
    pyramid = image.get("pyramid")
    small = pyramid.levels[-1] if pyramid is not None else np.asarray(image["pixels"])
    step = max(1, max(small.shape) // (2 * THUMB))
    lo, hi = next(iter((image.get("presets") or {"": (0.0, 1.0)}).values()))
    gray = np.ascontiguousarray(np.clip((small[::step, ::step] - lo) / max(hi - lo, 1e-6), 0, 1) * 255, dtype=np.uint8)
    picture = QImage(gray.data, gray.shape[1], gray.shape[0], gray.shape[1], QImage.Format.Format_Grayscale8).copy()
    return QIcon(
        QPixmap.fromImage(picture).scaled(THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    )


def fill_strip(pane: Any) -> None:
    """One item per view of ``pane.views``; the one on screen alone is selected."""
    strip = pane.view_strip
    strip.clear()
    for name in hanging_order(pane.views):
        image = pane.views[name]
        item = QListWidgetItem(name)
        item.setData(Qt.ItemDataRole.UserRole, name)
        if "error" in image:
            item.setIcon(strip.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning))
            item.setToolTip(f"{name}: could not be read: {image['error']}")
        else:
            item.setIcon(thumbnail(image))
            item.setToolTip(name if name in HANGING else f"{name}: outside the four-view hanging; click to open it")
        strip.addItem(item)
        item.setSelected(name == pane.shown_view and pane.stack.currentIndex() == 0)


def open_view(pane: Any, name: str) -> None:
    """Show the patient's view ``name`` alone (the analysed case itself with both models' maps)."""
    image = pane.views.get(name)
    if image is None:
        return
    analysed = pane.analysis is not None and name == pane.analysed_name
    pane.case_image = pane.analysis["case"] if analysed else image
    pane.shown_view = name
    pane._new_case = True  # another image: its own window and the whole of it in view
    pane.mode_box.setCurrentIndex(0)
    pane.refresh(auto_range=True)
