"""The main window: four panes in tabs, menus, drag and drop, persistence, safe close."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox, QProgressDialog, QTabWidget

from arfl_studio.gui import settings_store
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.export import export_plot, export_run_table
from arfl_studio.gui.panes.attack_pane import AttackPane
from arfl_studio.gui.panes.dataset_pane import DatasetPane
from arfl_studio.gui.panes.training_pane import TrainingPane
from arfl_studio.gui.panes.viewer_pane import ViewerPane
from arfl_studio.gui.workers import TaskHandle, cancel_all_and_wait, running_threads, start_task

TABLE_FILTER = "CSV (*.csv);;Excel (*.xlsx);;Markdown (*.md);;LaTeX (*.tex)"


def demo_task(out_dir: str | None, patients: int | None, size: tuple[int, int] | None):
    def task(report, cancel):
        from arfl_studio.data import DEFAULT_PATIENTS, DEFAULT_SIZE, ensure_demo_dataset

        return ensure_demo_dataset(out_dir, patients=patients or DEFAULT_PATIENTS, size=size or DEFAULT_SIZE,
                                   progress=lambda d, t: report((d, t), lossy=True), cancel=cancel)

    return task


class MainWindow(QMainWindow):
    def __init__(self, runs_root: str | Path | None = None, devices: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("ARFL Studio")
        self.setAcceptDrops(True)
        if devices is None:
            from arfl_studio.training.devices import describe_devices

            devices = describe_devices()
        self.dataset_pane = DatasetPane()
        self.training_pane = TrainingPane(devices)
        self.attack_pane = AttackPane()
        self.viewer_pane = ViewerPane()
        store = settings_store.settings()
        self.training_pane.runs_root = Path(runs_root or store.value("runs_root", str(Path.home() / "ARFL Studio runs")))
        self.tabs = QTabWidget()
        self.tabs.addTab(self.dataset_pane, "1  Dataset")
        self.tabs.addTab(self.training_pane, "2  Training")
        self.tabs.addTab(self.attack_pane, "3  Attack")
        self.tabs.addTab(self.viewer_pane, "4  Viewer")
        self.setCentralWidget(self.tabs)
        self.demo_task: TaskHandle | None = None
        self.demo_dialog: QProgressDialog | None = None
        self.ask_on_close = self._ask_on_close  # tests replace it
        self._build_menus()
        self._wire()
        self.statusBar().showMessage("Ready")
        self.resize(1360, 860)
        geometry = store.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = store.value("window_state")
        if state is not None:
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(store.value("tab", 0) or 0))

    # ---------------------------------------------------------------- menus
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open DICOM folder…", self.dataset_pane.choose_folder, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open labels file…", self.dataset_pane.choose_labels)
        self.recent_menu = file_menu.addMenu("Recent folders")
        self._action(file_menu, "Load the demo dataset", lambda: self.start_demo())
        file_menu.addSeparator()
        self._action(file_menu, "Export comparison table…", self.export_table_dialog)
        self._action(file_menu, "Export plots…", self.export_plots_dialog)
        self._action(file_menu, "Export overlay…", self.export_overlay_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        self._fill_recent()

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in settings_store.recent_folders():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda *_, f=folder: self.dataset_pane.load(f))
        self.recent_menu.setEnabled(bool(settings_store.recent_folders()))

    # ---------------------------------------------------------------- wiring
    def _wire(self) -> None:
        d, t, a = self.dataset_pane, self.training_pane, self.attack_pane
        d.folder_opened.connect(self._remember_folder)
        d.scanned.connect(self._on_scanned)
        d.image_table.doubleClicked.connect(self._open_dataset_image)
        t.run_finished.connect(self._on_run_finished)
        a.case_requested.connect(self._open_case)
        a.device = t.form.device()

    def _remember_folder(self, folder: str) -> None:
        settings_store.add_recent_folder(folder)
        self._fill_recent()

    def _on_scanned(self, scan) -> None:
        self.training_pane.set_dataset(str(scan.root), self.dataset_pane.labels_path, scan.layout)
        self.attack_pane.dataset_records = list(scan.images)
        s = scan.summary()
        self.statusBar().showMessage(f"{scan.root}: {s['patients']} patients, {s['images']} images, "
                                     f"{s['rejected']} rejected")

    def _open_dataset_image(self, index) -> None:
        record = self.dataset_pane.record_at(index.row())
        if record is not None:
            self.viewer_pane.show_record(record, self.dataset_pane.scan.images)
            self.tabs.setCurrentWidget(self.viewer_pane)

    def _on_run_finished(self, run_dir: str, status: str) -> None:
        self.statusBar().showMessage(f"Training {status}: {run_dir}")
        if status != "failed":
            self.attack_pane.device = self.training_pane.form.device()
            self.attack_pane.set_run(run_dir)

    def _open_case(self, request: dict) -> None:
        if self.viewer_pane.show_case(request) is not None:
            self.tabs.setCurrentWidget(self.viewer_pane)

    # ---------------------------------------------------------------- demo data
    def start_demo(self, out_dir: str | Path | None = None, patients: int | None = None,
                   size: tuple[int, int] | None = None) -> TaskHandle:
        """Generate the demo dataset if needed (progress dialog), then open it."""
        self.demo_dialog = QProgressDialog("Preparing the demo dataset (first launch only) …", "Cancel", 0, 0, self)
        self.demo_dialog.setWindowTitle("ARFL Studio")
        self.demo_dialog.setMinimumDuration(400)
        self.demo_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.demo_task = start_task(demo_task(str(out_dir) if out_dir else None, patients, size), "demo-data",
                                    on_event=self._demo_progress, on_done=self._demo_done,
                                    on_error=self._demo_failed, parent=self)
        self.demo_dialog.canceled.connect(self.demo_task.cancel)
        return self.demo_task

    def _demo_progress(self, payload) -> None:
        done, total = payload
        if self.demo_dialog is not None:
            self.demo_dialog.setMaximum(max(total, 1))
            self.demo_dialog.setValue(done)

    def _close_demo_dialog(self) -> None:
        if self.demo_dialog is not None:
            self.demo_dialog.reset()
            self.demo_dialog.deleteLater()
            self.demo_dialog = None

    def _demo_done(self, path) -> None:
        self._close_demo_dialog()
        self.dataset_pane.load(str(path))

    def _demo_failed(self, message: str, details: str) -> None:
        self._close_demo_dialog()
        if "cancel" not in message.lower():
            show_error(self, "Demo dataset", message, None, details)

    # ---------------------------------------------------------------- export
    def export_table_dialog(self) -> None:
        run_dir = self.training_pane.run_dir
        if run_dir is None:
            show_error(self, "Nothing to export", "Train a comparison first (Training pane).")
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export comparison table", str(run_dir / "comparison.csv"),
                                                   TABLE_FILTER)
        if path:
            ext = {"CSV": ".csv", "Excel": ".xlsx", "Markdown": ".md", "LaTeX": ".tex"}[chosen.split(" ")[0]]
            path = path if Path(path).suffix else path + ext
            self._try(lambda: export_run_table(run_dir, path), "Export failed")

    def export_plots_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the plots (PNG and SVG)")
        if folder:
            self._try(lambda: self.export_plots(folder), "Export failed")

    def export_plots(self, folder: str | Path) -> list[Path]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        plots = {"training_loss": self.training_pane.loss_plot, "validation_auc": self.training_pane.auc_plot,
                 "roc": self.attack_pane.roc_plot, "auc_vs_eps": self.attack_pane.auc_plot}
        out = []
        for name, plot in plots.items():
            for ext in (".png", ".svg"):
                out.append(export_plot(plot, folder / f"{name}{ext}"))
        return out

    def export_overlay_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export overlay", "overlay.png", "PNG (*.png);;SVG (*.svg);;PDF (*.pdf)")
        if path:  # one figure, full resolution, exactly the name typed (written in a worker)
            self._try(lambda: self.viewer_pane.export_overlay(path), "Export failed")

    def _try(self, fn, title: str):
        try:
            result = fn()
        except Exception as exc:  # the user picked the path; tell them what went wrong
            show_error(self, title, str(exc))
            return None
        self.statusBar().showMessage("Exported.")
        return result

    # ---------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        self.open_paths([u.toLocalFile() for u in event.mimeData().urls()])
        event.acceptProposedAction()

    def open_paths(self, paths: list[str]) -> None:
        folder = next((p for p in paths if Path(p).is_dir()), None)
        labels = next((p for p in paths if Path(p).suffix.lower() in (".xlsx", ".csv")), None)
        if labels:
            self.dataset_pane.labels_path = labels
        if folder:
            self.dataset_pane.load(folder, labels or self.dataset_pane.labels_path)
        elif labels:
            self.dataset_pane.rescan()
        self.tabs.setCurrentWidget(self.dataset_pane)

    # ---------------------------------------------------------------- close
    def _ask_on_close(self) -> bool:
        answer = QMessageBox.question(self, "Work in progress",
                                      "A task is still running (training, attack …). Stop it and quit?")
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event) -> None:
        if running_threads() and not self.ask_on_close():
            event.ignore()
            return
        self.statusBar().showMessage("Stopping running tasks …")
        cancel_all_and_wait(60000)
        store = settings_store.settings()
        store.setValue("geometry", self.saveGeometry())
        store.setValue("window_state", self.saveState())
        store.setValue("tab", self.tabs.currentIndex())
        store.setValue("runs_root", str(self.training_pane.runs_root))
        event.accept()
