"""The demo dataset, made on first launch behind a progress dialog (cancellable), then opened."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.workers import TaskHandle, start_task


def demo_task(out_dir: str | None, patients: int | None, size: tuple[int, int] | None):
    def task(report, cancel):
        from arfl_studio.data import DEFAULT_PATIENTS, DEFAULT_SIZE, ensure_demo_dataset

        return ensure_demo_dataset(
            out_dir,
            patients=patients or DEFAULT_PATIENTS,
            size=size or DEFAULT_SIZE,
            progress=lambda d, t: report((d, t), lossy=True),
            cancel=cancel,
        )

    return task


def generate_demo(
    parent: QWidget,
    out_dir: str | Path | None,
    patients: int | None,
    size: tuple[int, int] | None,
    on_ready: Callable[[Path], None],
) -> TaskHandle:
    """Make (or find) the demo dataset in a worker with a progress dialog; ``on_ready(path)`` when done."""
    dialog = QProgressDialog("Preparing the demo dataset (first launch only) …", "Cancel", 0, 0, parent)
    dialog.setWindowTitle("ARFL Studio")
    dialog.setMinimumDuration(400)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)

    def progress(payload) -> None:
        done, total = payload
        dialog.setMaximum(max(total, 1))
        dialog.setValue(done)

    def close() -> None:
        dialog.reset()
        dialog.deleteLater()

    def done(path) -> None:
        close()
        on_ready(path)

    def failed(message: str, details: str) -> None:
        close()
        if "cancel" not in message.lower():
            show_error(parent, "Demo dataset", message, None, details)

    task = start_task(
        demo_task(str(out_dir) if out_dir else None, patients, size),
        "demo-data",
        on_event=progress,
        on_done=done,
        on_error=failed,
        parent=parent,
    )
    dialog.canceled.connect(task.cancel)
    return task
