"""Dataset pane: open a DICOM folder and labels, see what was found and the fold split.

The pane shows one dataset: the last folder whose scan succeeded. A scan that fails
or is cancelled leaves that dataset (and everything that uses it) as it was, and a
labels file picked later applies to it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from arfl_studio.data.datasets.layout_names import LAYOUTS
from arfl_studio.data.datasets.summary import counts, rejection_category, rejection_counts
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.panes.dataset_tasks import scan_task, freeze_startup_objects, split_task, lesion_summary
from arfl_studio.gui.messages import gui_message
from arfl_studio.gui.thumbnails import THUMB_SIZE, ThumbnailLoader, default_cache_dir
from arfl_studio.gui.widgets.crop_preview import CropPreview
from arfl_studio.gui.widgets.label_policy import LabelPolicyBox
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task

ROW_MARGIN = 8  # thumbnails made this many rows beyond the visible ones


class DatasetPane(QWidget):
    scanned = Signal(object)  # ScanResult, only for a scan that succeeded
    folder_opened = Signal(str)  # a folder that was scanned successfully
    folds_changed = Signal(int)

    def __init__(self, parent=None, thumbnail_cache: str | Path | None = None):
        super().__init__(parent)
        self.scan = None
        self.folds = None
        self.cv_split = "patient-cv"  # Training's [cv] split: what the fold preview shows
        self.task: TaskHandle | None = None
        self.split_task: TaskHandle | None = None
        self.labels_path: str | None = None  # the labels of the dataset shown
        self.next_labels: str | None = None  # a labels file chosen before any folder was opened
        self.last_error: str | None = None

        self.root_label = QLabel("No dataset open")
        self.root_label.setWordWrap(True)
        self.root_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.open_button = QPushButton("Open DICOM folder…")
        self.labels_button = QPushButton("Labels file…")
        self.labels_button.setToolTip(
            "The CMMD clinical table (xlsx/CSV) or a CSV with path, patient and label columns; it applies to the folder shown"
        )
        self.layout_box = QComboBox()
        self.layout_box.addItems(LAYOUTS)
        self.layout_box.setToolTip("auto detects CMMD (clinical xlsx), a labels CSV, or one folder per class")
        self.rescan_button = QPushButton("Rescan")
        self.verify_box = QCheckBox("Verify (decode every file)")
        self.verify_box.setToolTip(
            "Decode every image while scanning (slower), so that a run never meets a file that lists fine but does not decode"
        )
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        top = QHBoxLayout()
        for w in (self.open_button, self.labels_button, QLabel("Layout:"), self.layout_box, self.rescan_button, self.verify_box):
            top.addWidget(w)
        top.addWidget(self.progress, 1)

        self.label_policy = LabelPolicyBox()  # CMMD's missing-row policy, the BI-RADS mapping
        self.label_policy.changed.connect(self.rescan)
        self.summary_form = QFormLayout()
        summary_box = QGroupBox("Summary")
        summary_box.setLayout(self.summary_form)
        self.fold_spin = QSpinBox()
        self.fold_spin.setRange(2, 10)
        self.fold_spin.setValue(5)
        self.fold_spin.setToolTip("Number of cross-validation folds; the same setting as Folds in the Training pane")
        self.fold_model = RowsModel(
            [
                ("fold", "Fold"),
                ("patients", "Patients"),
                ("images", "Images"),
                ("malignant", "Malignant"),
                ("benign", "Benign"),
                ("share", "% malignant"),
            ]
        )
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
        left_layout.addWidget(self.label_policy)
        left_layout.addWidget(summary_box)
        left_layout.addWidget(fold_box, 1)

        self.image_model = RowsModel(
            [
                ("thumb", ""),
                ("patient_id", "Patient"),
                ("laterality", "Side"),
                ("view", "View"),
                ("label_name", "Label"),
                ("lesions", "Lesions"),
                ("rel_path", "File"),
            ]
        )
        self.image_model.thumbnail_column = "thumb"
        self.image_table = self._table(self.image_model, fixed=True)
        self.image_table.verticalHeader().setDefaultSectionSize(THUMB_SIZE[0] + 4)
        self.image_table.setColumnWidth(0, THUMB_SIZE[1] + 10)
        for column, width in enumerate((THUMB_SIZE[1] + 10, 90, 40, 50, 70, 60), start=0):
            self.image_table.setColumnWidth(column, width)
        self.rejected_model = RowsModel([("path", "File"), ("category", "Kind"), ("reason", "Why it was skipped")])
        self.rejected_table = self._table(self.rejected_model)
        self.unlabeled_model = RowsModel([("path", "File"), ("reason", "Why it has no label")])
        self.unlabeled_table = self._table(self.unlabeled_model)
        self.orphans_model = RowsModel([("patient_id", "Patient"), ("side", "Side"), ("reason", "Note")])
        self.orphans_table = self._table(self.orphans_model)
        self.lists = QTabWidget()
        self.lists.addTab(self.image_table, "Images")
        self.lists.addTab(self.rejected_table, "Rejected")
        self.lists.addTab(self.unlabeled_table, "Unlabeled")
        self.lists.addTab(self.orphans_table, "Labels without images")
        self.crop_preview = CropPreview()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.lists)
        right.addWidget(self.crop_preview)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([400, 600])  # the fold table's columns fit at 1024 px
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)

        self.thumbnails = ThumbnailLoader(default_cache_dir() if thumbnail_cache is None else thumbnail_cache, self)
        self.thumbnails.ready.connect(self.image_model.set_thumbnail)
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(40)  # scrolling: ask once the list settles, not per pixel
        self._visible_timer.timeout.connect(self.request_visible_thumbnails)
        self.image_table.verticalScrollBar().valueChanged.connect(lambda _v: self._visible_timer.start())
        self.image_table.selectionModel().currentRowChanged.connect(self._on_current_row)

        self.open_button.clicked.connect(self.choose_folder)
        self.labels_button.clicked.connect(self.choose_labels)
        self.rescan_button.clicked.connect(self.rescan)
        self.layout_box.activated.connect(lambda _i: self.rescan())
        self.fold_spin.valueChanged.connect(self._refold)

    @staticmethod
    def _table(model, fixed: bool = False) -> QTableView:
        table = QTableView()
        table.setModel(model)
        table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        table.horizontalHeader().setStretchLastSection(True)
        if not fixed:  # measuring thousands of rows' contents on every change would stall the UI
            table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
            table.horizontalHeader().setResizeContentsPrecision(200)
        table.verticalHeader().setVisible(False)
        return table

    # ---------------------------------------------------------------- actions
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a DICOM folder")
        if folder:
            self.load(folder, self.next_labels)

    def choose_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels file", "", "Tables (*.xlsx *.csv);;All files (*)")
        if path:
            self.apply_labels(path)

    def apply_labels(self, path: str | Path) -> TaskHandle | None:
        """Use ``path`` as the labels of the folder shown (rescans it); before any folder, of the next one."""
        if self.scan is None:
            self.next_labels = str(path)
            self.root_label.setText(f"Labels file {path} will be used for the folder you open next.")
            return None
        return self.load(str(self.scan.root), str(path), "auto")  # the file's columns tell CMMD from CSV

    def rescan(self) -> TaskHandle | None:
        if self.scan is not None:
            return self.load(str(self.scan.root), self.labels_path, self.layout_box.currentText())
        return None

    def load(self, root: str | Path, labels: str | None = None, layout: str = "auto") -> TaskHandle:
        """Scan ``root`` in a worker; the dataset shown is replaced only when the scan succeeds."""
        freeze_startup_objects()
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        pending = {"root": str(root), "labels": str(labels) if labels else None, "layout": layout}
        self.root_label.setText(f"Scanning {root} …" + (f"<br>(still showing {self.scan.root})" if self.scan else ""))
        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        task = scan_task(
            pending["root"],
            pending["labels"],
            layout,
            self.fold_spin.value(),
            self.verify_box.isChecked(),
            self.label_policy.options(),
            self.cv_split,
        )
        handle = start_task(task, "scan", parent=self)
        handle.event.connect(lambda payload, h=handle: h is self.task and self._on_event(payload))
        handle.done.connect(lambda result, h=handle: h is self.task and self._on_done(result, pending))
        handle.failed.connect(lambda m, d, h=handle: h is self.task and self._on_error(m, d, pending))
        self.task = handle
        return handle

    # ---------------------------------------------------------------- results
    def _on_event(self, payload) -> None:
        kind, done, total = payload
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("decoding %v/%m" if kind == "verify" else "%v/%m files")

    def _on_done(self, result, pending: dict) -> None:
        self.progress.setVisible(False)
        scan = result["scan"]
        if scan.cancelled:
            self._restore_label(f"Scan of {pending['root']} was cancelled.")
            return
        if not scan.images:  # nothing to train on: say why, keep the dataset that works
            c = counts(scan)
            reasons = [f"{p}: {why}" for p, why in scan.rejected[:30]] + [f"{p}: no label" for p in scan.unlabeled[:30]]
            self._failed(
                pending,
                f"no labelled images in {scan.root} ({c['rejected']} rejected, {c['unlabeled']} "
                f"without a label, {c['labels_without_images']} label rows without images); "
                "check the labels file (File → Open labels file…) and the Layout box",
                "\n".join(reasons),
            )
            return
        self.labels_path = pending["labels"]
        self.next_labels = None
        self.last_error = None
        self._show_scan(scan, result["summary"], result["image_rows"], result["split"])
        self.folder_opened.emit(str(scan.root))
        self.scanned.emit(scan)

    def _on_error(self, message: str, details: str, pending: dict) -> None:
        self.progress.setVisible(False)
        message = message.split(": ", 1)[1] if message.startswith(("LayoutError: ", "ValueError: ")) else message
        self._failed(pending, message, details)

    def _failed(self, pending: dict, message: str, details: str) -> None:
        """A scan that gives no dataset: the one shown stays; the dialog offers to retry with labels."""
        message = gui_message(message)
        self.last_error = message
        what = f"labels {pending['labels']}" if self.scan is not None and pending["root"] == str(self.scan.root) else pending["root"]
        self._restore_label(f"Could not open {what}: {message}")
        box = show_error(self, "Scan failed", f"Could not open {what}: {message}", None, details)
        retry = box.addButton("Choose labels file…", QMessageBox.ButtonRole.ActionRole)
        retry.clicked.connect(lambda: self._retry_with_labels(pending))

    def _retry_with_labels(self, pending: dict) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Labels file for {pending['root']}", pending["root"], "Tables (*.xlsx *.csv);;All files (*)"
        )
        if path:
            self.load(pending["root"], path, "auto")

    def _restore_label(self, note: str) -> None:
        shown = self._root_text() if self.scan is not None else "No dataset open."
        self.root_label.setText(f"<span style='color:#b00'>{note}</span><br>{shown}")

    def _root_text(self) -> str:
        return f"<b>{self.scan.root}</b><br>layout: {self.scan.layout}" + (f"<br>labels: {self.labels_path}" if self.labels_path else "")

    def _show_scan(self, scan, summary: dict, rows: list[dict], split: dict) -> None:
        self.scan = scan
        self.layout_box.setCurrentText(scan.layout if scan.layout in LAYOUTS else "auto")
        self.label_policy.show_for(scan.layout)
        self.root_label.setText(self._root_text())
        self._show_summary(scan, summary)
        self.image_model.set_rows(rows)
        self.rejected_model.set_rows(
            [
                {"path": r[0], "reason": r[1], "category": str(getattr(r, "category", None) or rejection_category(r[1])).replace("_", " ")}
                for r in scan.rejected
            ]
        )
        why = "no row for this patient and side in the labels" if scan.layout != "folders" else "not under a benign/ or malignant/ folder"
        self.unlabeled_model.set_rows([{"path": p, "reason": why} for p in scan.unlabeled])
        self.orphans_model.set_rows(
            [{"patient_id": p, "side": s or "-", "reason": "in the labels, no image found"} for p, s in scan.labels_without_images]
        )
        c = counts(scan)
        for i, (name, key) in enumerate(
            (("Images", "images"), ("Rejected", "rejected"), ("Unlabeled", "unlabeled"), ("Labels without images", "labels_without_images"))
        ):
            self.lists.setTabText(i, f"{name} ({c[key]})")
        self._show_folds(split)
        self.thumbnails.reset([r.path for r in scan.images])
        self._visible_timer.start()
        self.crop_preview.show_path(None)

    def _show_summary(self, scan, summary: dict) -> None:
        while self.summary_form.rowCount():
            self.summary_form.removeRow(0)
        c = counts(scan)
        by_label = summary.get("by_label", {})
        patients_by_label = summary.get("patients_by_label", {})
        categories = rejection_counts(scan, summary)
        rows = [
            ("Patients", f"{c['patients']}  ({', '.join(f'{v} {k}' for k, v in patients_by_label.items())})"),
            ("Images", str(c["images"])),
            ("Malignant / benign", f"{by_label.get('malignant', 0)} / {by_label.get('benign', 0)}"),
            ("Lesions", lesion_summary(scan.images)),
            ("Views", ", ".join(f"{k}: {v}" for k, v in summary.get("by_view", {}).items())),
            ("Sides", ", ".join(f"{k}: {v}" for k, v in summary.get("by_laterality", {}).items())),
            (
                "Rejected files",
                str(c["rejected"])
                + (f"  ({', '.join(f'{k.replace(chr(95), chr(32))}: {v}' for k, v in categories.items())})" if categories else ""),
            ),
            ("Unlabeled images", str(c["unlabeled"])),
            ("Label rows without images", str(c["labels_without_images"])),
            ("Labels", summary.get("label_rule") or "as the layout reads them"),
            (
                "Scan",
                f"{summary.get('files', 0)} files, {summary.get('files_per_second') or '-'} files/s; "
                f"{summary.get('headers_from_cache', 0)} headers from the scan cache, {summary.get('headers_read', 0)} read",
            ),
        ]
        for name, value in rows:
            label = QLabel(value)
            label.setWordWrap(True)
            label.setObjectName(f"summary:{name}")
            self.summary_form.addRow(name + ":", label)

    def summary_value(self, name: str) -> str | None:
        """The text of one summary row (tests and the status bar read it)."""
        label = self.findChild(QLabel, f"summary:{name}")
        return label.text() if label is not None else None

    # ---------------------------------------------------------------- folds
    def set_folds(self, k: int) -> None:
        self.fold_spin.setValue(int(k))

    def set_split(self, split: str) -> None:
        """Preview Training's ``[cv] split``: patient-level folds or the dataset's official split."""
        if split != self.cv_split:
            self.cv_split = split
            self.fold_spin.setEnabled(split == "patient-cv")
            self._refold()

    def _refold(self) -> None:
        self.folds_changed.emit(self.fold_spin.value())
        if self.scan is None:
            return
        if self.split_task is not None and self.split_task.is_running():
            self.split_task.cancel()  # its result is dropped: only the split for the current k is shown
        handle = start_task(split_task(self.scan.images, self.fold_spin.value(), self.cv_split), "fold-split", parent=self)
        handle.done.connect(lambda split, h=handle: h is self.split_task and self._show_folds(split))
        self.split_task = handle

    def _show_folds(self, split: dict) -> None:
        if split["k"] != self.fold_spin.value() or split["split"] != self.cv_split:
            return  # a stale split: the user changed the fold count or the split since
        self.folds = split["folds"]
        if self.folds is None:
            self.fold_model.set_rows([])
            self.fold_note.setText(f"No split: {gui_message(split['error'] or '')}")
            return
        self.fold_model.set_rows(split["rows"])
        self.fold_note.setText(
            split["note"]
            or "Each patient's images are in exactly one fold (no patient leaks between train and test). Training uses this split."
        )

    # ---------------------------------------------------------------- thumbnails, preview
    def visible_rows(self) -> range:
        n = self.image_model.rowCount()
        if not n:
            return range(0)
        top = max(self.image_table.rowAt(0), 0)
        bottom = self.image_table.rowAt(self.image_table.viewport().height() - 1)
        bottom = n - 1 if bottom < 0 else bottom
        return range(max(top - ROW_MARGIN, 0), min(bottom + ROW_MARGIN + 1, n))

    def request_visible_thumbnails(self) -> None:
        self.thumbnails.request(self.visible_rows())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._visible_timer.start()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._visible_timer.start()

    def _on_current_row(self, current, _previous) -> None:
        record = self.record_at(current.row())
        if record is not None:
            self.crop_preview.show_path(record.path)

    def select_row(self, row: int) -> None:
        self.image_table.selectRow(row)

    def current_row(self) -> int:
        return self.image_table.currentIndex().row()

    def record_at(self, row: int):
        return self.scan.images[row] if self.scan is not None and 0 <= row < len(self.scan.images) else None

    def busy(self) -> bool:
        """A scan, thumbnails or a preview are still being made."""
        tasks = (self.task, self.split_task, self.thumbnails.task, self.crop_preview.task)
        timers = (self._visible_timer, self.crop_preview._debounce)
        return any(t is not None and t.is_running() for t in tasks) or self.thumbnails.pending() > 0 or any(t.isActive() for t in timers)
