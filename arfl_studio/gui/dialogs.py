"""Error dialogs that never block the event loop (``open()``, not ``exec()``)."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

_LAST: list[QMessageBox] = []


def show_error(parent: QWidget | None, title: str, message: str, run_dir: str | None = None, details: str | None = None) -> QMessageBox:
    text = message if not run_dir else f"{message}\n\nRun folder: {run_dir}"
    box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setTextInteractionFlags(box.textInteractionFlags())
    if details:
        box.setDetailedText(details)
    box.setObjectName("errorDialog")
    box.open()
    _LAST[:] = [box]
    return box


def last_error() -> QMessageBox | None:
    """The most recent error dialog (tests read its text)."""
    return _LAST[0] if _LAST else None


def clear_last_error() -> None:
    if _LAST:
        _LAST[0].close()
    _LAST.clear()
