"""A read-only table model over a list of dicts, with an optional thumbnail column."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QImage, QPixmap


def gray_to_qimage(gray: np.ndarray) -> QImage:
    """uint8/float [0,1] grayscale (H, W) -> a QImage that owns its pixels."""
    arr = np.asarray(gray)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0, 1) * 255).astype(np.uint8)
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape
    return QImage(arr.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    arr = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class RowsModel(QAbstractTableModel):
    """Rows are dicts; ``columns`` are (key, header) pairs."""

    def __init__(self, columns: Sequence[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.columns = list(columns)
        self.rows: list[dict[str, Any]] = []
        self.thumbnails: dict[int, QPixmap] = {}
        self.thumbnail_column: str | None = None

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = list(rows)
        self.thumbnails.clear()
        self.endResetModel()

    def append_row(self, row: dict[str, Any]) -> None:
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n)
        self.rows.append(row)
        self.endInsertRows()

    def set_thumbnail(self, row: int, gray: np.ndarray) -> None:
        if self.thumbnail_column is None or not 0 <= row < len(self.rows):
            return
        self.thumbnails[row] = QPixmap.fromImage(gray_to_qimage(gray))
        col = [k for k, _ in self.columns].index(self.thumbnail_column)
        index = self.index(row, col)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.columns[section][1]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        key = self.columns[index.column()][0]
        if role == Qt.ItemDataRole.DecorationRole and key == self.thumbnail_column:
            return self.thumbnails.get(index.row())
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            value = self.rows[index.row()].get(key, "")
            if isinstance(value, float):
                return f"{value:.3f}"
            return "" if value is None else str(value)
        return None
