"""External validation from the window (the File menu's *Evaluate run on another dataset…*):
``arfl-studio evaluate`` in a worker, its table in a dialog.

The core (:func:`arfl_studio.experiments.external.evaluate_external`) scores every fold model, the
fold ensemble and the final model of a run on a labelled folder; the window only asks for the two
folders, shows progress and presents the table (AUC with its DeLong interval, rates at the stored
threshold, attacked AUC, and how many of the dataset's patients trained each model).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.help import HelpDialog
from arfl_studio.gui.workers import TaskHandle, start_task


def external_task(run_dir: str, data: str):
    def task(report, cancel):
        from arfl_studio.experiments.external import evaluate_external, render_table, scan_external

        records, summary = scan_external(data)
        doc = evaluate_external(run_dir, records, progress=lambda d, t: report((d, t), lossy=True), cancel=cancel)
        doc["data"] = {k: summary.get(k) for k in ("layout", "label_rule")}  # the table names the label rule
        head = f"{Path(data).name}: {summary['images']} images of {summary['patients']} patients\n\n"
        return head + render_table(doc)

    return task


def evaluate_on_another_dataset(parent: QWidget, run_dir: str | None = None, data: str | None = None) -> TaskHandle | None:
    """Ask for the run and the dataset (unless given), score in a worker, show the table when done."""
    run_dir = run_dir or QFileDialog.getExistingDirectory(parent, "The trained run to evaluate")
    if not run_dir:
        return None
    data = data or QFileDialog.getExistingDirectory(parent, "The labelled dataset to score it on")
    if not data:
        return None

    def done(text: str) -> None:
        parent.external_dialog = HelpDialog(f"External validation of {Path(run_dir).name}", f"```\n{text}\n```", parent)
        parent.external_dialog.show()

    def failed(message: str, details: str) -> None:
        show_error(parent, "External validation", message, run_dir, details)

    return start_task(external_task(str(run_dir), str(data)), "evaluate", on_done=done, on_error=failed, parent=parent)
