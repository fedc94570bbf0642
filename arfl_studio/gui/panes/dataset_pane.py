"""Dataset pane: open a DICOM folder and labels, see what was found and the fold split."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
    QPushButton, QSpinBox, QSplitter, QTableView, QTabWidget, QVBoxLayout, QWidget,
)

from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task

LAYOUTS = ("auto", "cmmd", "csv", "folders")
THUMBNAILS = 64  # first N images get a thumbnail (read in the scan worker)
THUMB_PX = 48


def _thumbnail(path: Path) -> np.ndarray:
    from arfl_studio.data.dicom import read_mammogram

    pixels = read_mammogram(path).pixels
    step = max(1, int(np.ceil(max(pixels.shape) / THUMB_PX)))
    return (np.clip(pixels[::step, ::step], 0, 1) * 255).astype(np.uint8).copy()


def scan_task(root: str, labels: str | None, layout: str, folds: int):
    """The worker body: scan, split, then thumbnails (reported one by one)."""

    def task(report, cancel):
        from arfl_studio.data import patient_folds, scan_dataset

        scan = scan_dataset(root, labels, layout, progress=lambda d, t: report(("progress", d, t), lossy=True),
                            cancel=cancel)
        split = _safe_folds(patient_folds, scan.images, folds)
        report(("scan", scan, split))
        for i, record in enumerate(scan.images[:THUMBNAILS]):
            if cancel.is_set():
                break
            try:
                report(("thumb", i, _thumbnail(record.path)))
            except Exception:  # a thumbnail is a nicety; the scan already judged the file
                continue
        return scan

    return task


def _safe_folds(patient_folds, records, k):
    try:
        return patient_folds(records, k=k, seed=0), None
    except Exception as exc:  # too few patients for k folds, one class only ...
        return None, str(exc)


class DatasetPane(QWidget):
    scanned = Signal(object)  # ScanResult
    folder_opened = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scan = None
        self.folds = None
        self.task: TaskHandle | None = None
        self.labels_path: str | None = None

        self.root_label = QLabel("No dataset open")
        self.root_label.setWordWrap(True)
        self.open_button = QPushButton("Open DICOM folder…")
        self.labels_button = QPushButton("Labels file…")
        self.layout_box = QComboBox()
        self.layout_box.addItems(LAYOUTS)
        self.layout_box.setToolTip("auto detects CMMD (clinical xlsx), a labels CSV, or one folder per class")
        self.rescan_button = QPushButton("Rescan")
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        top = QHBoxLayout()
        for w in (self.open_button, self.labels_button, QLabel("Layout:"), self.layout_box, self.rescan_button):
            top.addWidget(w)
        top.addWidget(self.progress, 1)

        self.summary_form = QFormLayout()
        summary_box = QGroupBox("Summary")
        summary_box.setLayout(self.summary_form)
        self.fold_spin = QSpinBox()
        self.fold_spin.setRange(2, 10)
        self.fold_spin.setValue(5)
        self.fold_model = RowsModel([("fold", "Fold"), ("patients", "Patients"), ("images", "Images"),
                                     ("malignant", "Malignant"), ("benign", "Benign"), ("share", "Malignant share")])
        self.fold_table = self._table(self.fold_model)
        self.fold_note = QLabel("")
        self.fold_note.setWordWrap(True)
        fold_box = QGroupBox("Fold split preview (by patient)")
        fold_layout = QVBoxLayout(fold_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Folds:"))
        row.addWidget(self.fold_spin)
        row.addStretch(1)
        fold_layout.addLayout(row)
        fold_layout.addWidget(self.fold_table)
        fold_layout.addWidget(self.fold_note)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.root_label)
        left_layout.addWidget(summary_box)
        left_layout.addWidget(fold_box, 1)

        self.image_model = RowsModel([("thumb", ""), ("patient_id", "Patient"), ("laterality", "Side"),
                                      ("view", "View"), ("label_name", "Label"), ("rel_path", "File")])
        self.image_model.thumbnail_column = "thumb"
        self.image_table = self._table(self.image_model)
        self.image_table.verticalHeader().setDefaultSectionSize(THUMB_PX + 4)
        self.image_table.setColumnWidth(0, THUMB_PX + 8)
        self.rejected_model = RowsModel([("path", "File"), ("reason", "Why it was skipped")])
        self.rejected_table = self._table(self.rejected_model)
        self.lists = QTabWidget()
        self.lists.addTab(self.image_table, "Images")
        self.lists.addTab(self.rejected_table, "Rejected")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.lists)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.open_button.clicked.connect(self.choose_folder)
        self.labels_button.clicked.connect(self.choose_labels)
        self.rescan_button.clicked.connect(self.rescan)
        self.layout_box.activated.connect(lambda _i: self.rescan())
        self.fold_spin.valueChanged.connect(self._refold)

    @staticmethod
    def _table(model) -> QTableView:
        table = QTableView()
        table.setModel(model)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.horizontalHeader().setStretchLastSection(True)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.verticalHeader().setVisible(False)
        return table

    # ---------------------------------------------------------------- actions
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM folder")
        if folder:
            self.load(folder, self.labels_path)

    def choose_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels file", "", "Tables (*.xlsx *.csv);;All files (*)")
        if path:
            self.labels_path = path
            if self.scan is not None:
                self.rescan()

    def rescan(self) -> None:
        if self.scan is not None:
            self.load(str(self.scan.root), self.labels_path, self.layout_box.currentText())

    def load(self, root: str | Path, labels: str | None = None, layout: str = "auto") -> TaskHandle:
        """Scan ``root`` in a worker; the pane fills in as results arrive."""
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        self.labels_path = str(labels) if labels else None
        self.layout_box.setCurrentText(layout)
        self.root_label.setText(f"Scanning {root} …")
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.folder_opened.emit(str(root))
        self.task = start_task(scan_task(str(root), self.labels_path, layout, self.fold_spin.value()), "scan",
                               on_event=self._on_event, on_done=self._on_done, on_error=self._on_error, parent=self)
        return self.task

    # ---------------------------------------------------------------- results
    def _on_event(self, payload) -> None:
        kind = payload[0]
        if kind == "progress":
            _, done, total = payload
            self.progress.setRange(0, max(total, 1))
            self.progress.setValue(done)
        elif kind == "scan":
            self._show_scan(payload[1], *payload[2])
        elif kind == "thumb":
            self.image_model.set_thumbnail(payload[1], payload[2])

    def _on_done(self, scan) -> None:
        self.progress.setVisible(False)

    def _on_error(self, message: str, details: str) -> None:
        self.progress.setVisible(False)
        self.root_label.setText(f"Scan failed: {message}")
        show_error(self, "Scan failed", message, None, details)

    def _show_scan(self, scan, folds, fold_error) -> None:
        self.scan = scan
        self.layout_box.setCurrentText(scan.layout if scan.layout in LAYOUTS else "auto")
        self.root_label.setText(f"<b>{scan.root}</b><br>layout: {scan.layout}"
                                + (f"<br>labels: {self.labels_path}" if self.labels_path else ""))
        self._show_summary(scan.summary())
        self.image_model.set_rows([
            {"patient_id": r.patient_id, "laterality": r.laterality or "?", "view": r.view or "?",
             "label_name": "malignant" if r.label == 1 else "benign", "rel_path": r.rel_path}
            for r in scan.images
        ])
        self.rejected_model.set_rows([{"path": p, "reason": why} for p, why in scan.rejected]
                                     + [{"path": p, "reason": "no label for this patient/side"} for p in scan.unlabeled])
        self.lists.setTabText(1, f"Rejected ({len(scan.rejected) + len(scan.unlabeled)})")
        self.lists.setTabText(0, f"Images ({len(scan.images)})")
        self._show_folds(folds, fold_error)
        self.scanned.emit(scan)

    def _show_summary(self, summary: dict) -> None:
        while self.summary_form.rowCount():
            self.summary_form.removeRow(0)
        by_label = summary.get("by_label", {})
        patients_by_label = summary.get("patients_by_label", {})
        rows = [
            ("Patients", f"{summary.get('patients', 0)}  ({', '.join(f'{v} {k}' for k, v in patients_by_label.items())})"),
            ("Images", str(summary.get("images", 0))),
            ("Malignant / benign", f"{by_label.get('malignant', 0)} / {by_label.get('benign', 0)}"),
            ("Views", ", ".join(f"{k}: {v}" for k, v in summary.get("by_view", {}).items())),
            ("Sides", ", ".join(f"{k}: {v}" for k, v in summary.get("by_laterality", {}).items())),
            ("Rejected / unlabeled", f"{summary.get('rejected', 0)} / {summary.get('unlabeled', 0)}"),
        ]
        for name, value in rows:
            label = QLabel(value)
            label.setWordWrap(True)
            self.summary_form.addRow(name + ":", label)

    def _refold(self) -> None:
        if self.scan is None:
            return
        from arfl_studio.data import patient_folds

        self._show_folds(*_safe_folds(patient_folds, self.scan.images, self.fold_spin.value()))

    def _show_folds(self, folds, error) -> None:
        self.folds = folds
        if folds is None:
            self.fold_model.set_rows([])
            self.fold_note.setText(f"No split: {error}")
            return
        rows = []
        records = self.scan.images
        for k, held_out in enumerate(folds):
            labels = Counter(records[i].label for i in held_out)
            n = len(held_out)
            rows.append({"fold": k + 1, "patients": len({records[i].patient_id for i in held_out}), "images": n,
                         "malignant": labels.get(1, 0), "benign": labels.get(0, 0),
                         "share": f"{labels.get(1, 0) / n:.0%}" if n else "-"})
        self.fold_model.set_rows(rows)
        self.fold_note.setText("Each patient's images are in exactly one fold (no patient leaks between train and test).")

    def record_at(self, row: int):
        return self.scan.images[row] if self.scan is not None and 0 <= row < len(self.scan.images) else None
