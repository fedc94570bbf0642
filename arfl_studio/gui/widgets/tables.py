"""A read-only table model over a list of dicts, with an optional thumbnail column.

Views may sort it (``setSortingEnabled(True)``): :meth:`RowsModel.sort` reorders
``rows`` itself, so ``rows[index.row()]`` stays the row a view shows. Numbers sort as
numbers, and text by its leading number when it has one ("54.2 ± 3.1").
"""

from __future__ import annotations

import re
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


_LEADING_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def sort_key(value: Any) -> tuple:
    """Missing values last, then numbers (or text that starts with one) by value, then text."""
    if value is None or value == "" or value == "-" or (isinstance(value, float) and value != value):
        return (2, 0.0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    text = str(value)
    match = _LEADING_NUMBER.match(text)
    if match:
        return (0, float(match.group(0)), text)
    return (1, 0.0, text.lower())


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

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        if not 0 <= column < len(self.columns):
            return
        key = self.columns[column][0]
        self.layoutAboutToBeChanged.emit()
        keys = [sort_key(row.get(key)) for row in self.rows]
        present = sorted(
            (i for i in range(len(keys)) if keys[i][0] < 2), key=keys.__getitem__, reverse=order == Qt.SortOrder.DescendingOrder
        )
        order_index = present + [i for i in range(len(keys)) if keys[i][0] == 2]  # missing values stay last
        self.rows = [self.rows[i] for i in order_index]
        new_row = {old: new for new, old in enumerate(order_index)}
        self.thumbnails = {new_row[old]: pix for old, pix in self.thumbnails.items() if old in new_row}
        self.layoutChanged.emit()

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
