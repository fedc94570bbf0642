"""The main window: four panes in tabs, menus, shortcuts, help, runs, drag and drop,
persistence, safe close."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QBoxLayout,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QTabWidget,
    QWidget,
)

from arfl_studio import __version__
from arfl_studio.gui import help as app_help
from arfl_studio.gui import settings_store
from arfl_studio.data.datasets.summary import status_line
from arfl_studio.gui.demo_generation import generate_demo
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.external_evaluation import evaluate_on_another_dataset
from arfl_studio.gui.export import export_pane_plots, export_run_table

from arfl_studio.gui.messages import gui_message
from arfl_studio.experiments.run_history import RunFolderError, save_attack
from arfl_studio.gui.runs import RunsController
from arfl_studio.gui.panes.attack_pane import AttackPane
from arfl_studio.gui.panes.dataset_pane import DatasetPane
from arfl_studio.gui.panes.training_pane import TrainingPane
from arfl_studio.gui.panes.viewer_pane import ViewerPane
from arfl_studio.gui.workers import TaskHandle, cancel_all_and_wait, running_threads

PLOT_TITLES = {"training_loss": "Training loss", "validation_auc": "Validation AUC", "roc": "ROC", "auc_vs_eps": "AUC vs ε"}
MAX_PANE_MIN_WIDTH = 1000  # the window fits a 1024x700 screen (issue 13.13)
TABLE_FILTER = "CSV (*.csv);;Excel (*.xlsx);;Markdown (*.md);;LaTeX (*.tex)"


class MainWindow(QMainWindow):
    def __init__(self, runs_root: str | Path | None = None, devices: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{app_help.APP_NAME} {__version__}")
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
        # No pane may hold the window wider than a 1024 px screen (a tab widget takes its widest page's
        # minimum): a pane whose controls need more is squeezed, not the whole window off screen.
        for pane in (self.dataset_pane, self.training_pane, self.attack_pane, self.viewer_pane):
            hint = pane.minimumSizeHint()
            if hint.width() > MAX_PANE_MIN_WIDTH:
                pane.setMinimumSize(MAX_PANE_MIN_WIDTH, hint.height())
        self.demo_task: TaskHandle | None = None
        self.ask_on_close = self._ask_on_close  # tests replace it
        self.runs = RunsController(self.training_pane, self.attack_pane, self)
        self.help_dialogs: list[app_help.HelpDialog] = []
        self._case_source: tuple[str, int] | None = None  # ("dataset" | "flips", row) of the case in the viewer
        self._last_overlay = "saliency"
        self.named_actions: dict[str, QAction] = {}
        self._build_menus()
        self._build_runs_bar()
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
        key = app_help.shortcut
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open DICOM folder…", self.dataset_pane.choose_folder, key("open_folder"), "open_folder")
        self._action(file_menu, "Open labels file…", self.dataset_pane.choose_labels)
        self.recent_menu = file_menu.addMenu("Recent folders")
        self._action(file_menu, "Load the demo dataset", lambda: self.start_demo())
        self._action(file_menu, "Open run…", self.open_run_dialog, key("open_run"), "open_run")
        self._action(file_menu, "Evaluate run on another dataset…", lambda: evaluate_on_another_dataset(self))
        file_menu.addSeparator()
        self._action(file_menu, "Export comparison table…", self.export_table_dialog)
        plot_menu = file_menu.addMenu("Export plot")
        for name, plot in self.plots().items():
            plot.export_name = name
            self._action(
                plot_menu, f"{PLOT_TITLES[name]} (SVG, PDF or PNG)…", lambda p=plot: p.export_dialog(str(self.training_pane.run_dir or ""))
            )
        self._action(file_menu, "Export all plots…", self.export_plots_dialog)
        self._action(file_menu, "Export overlay…", self.export_overlay_dialog)
        self._action(file_menu, "Export overlay as DICOM…", lambda: self.export_overlay_dialog("overlay.dcm"))
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, key("quit"), "quit")
        self._fill_recent()

        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Start training", self.start_training, key("start_training"), "start_training")
        self._action(run_menu, "Stop training", lambda: self.training_pane.stop(), key("stop_training"), "stop_training")
        self._action(run_menu, "Resume the stopped run", self.resume_run, key("resume_training"), "resume_training")
        self._action(run_menu, "Add the current settings to the queue", self.queue_run, key("queue_run"), "queue_run")
        self._action(run_menu, "Clear the queue", self.clear_queue, None, "clear_queue")

        view_menu = self.menuBar().addMenu("&View")
        for i, name in enumerate(("Dataset", "Training", "Attack", "Viewer")):
            self._action(view_menu, f"{name} pane", lambda i=i: self.tabs.setCurrentIndex(i), key(f"pane_{i + 1}"), f"pane_{i + 1}")
        view_menu.addSeparator()
        self._action(view_menu, "Next case", lambda: self.step_case(+1), key("next_case"), "next_case")
        self._action(view_menu, "Previous case", lambda: self.step_case(-1), key("previous_case"), "previous_case")
        self._action(view_menu, "Overlay on / off", self.toggle_overlay, key("toggle_overlay"), "toggle_overlay")
        self._action(view_menu, "Adversarial / clean image", self.toggle_adversarial, key("toggle_adversarial"), "toggle_adversarial")

        help_menu = self.menuBar().addMenu("&Help")
        self.guide_menu = help_menu.addMenu("User guide pages")
        sections = app_help.guide_sections()
        for title, text in sections:
            self._action(self.guide_menu, title, lambda t=title, m=text: self.show_help(t, m))
        self.guide_menu.setEnabled(bool(sections))
        whole = "\n\n".join(text for _t, text in sections)
        self._action(
            help_menu, "User guide", lambda: self.show_help("User guide", whole or "The user guide was not found."), key("help"), "help"
        )
        self._action(help_menu, "Keyboard shortcuts", lambda: self.show_help("Keyboard shortcuts", app_help.shortcuts_markdown()))
        help_menu.addSeparator()
        self._action(help_menu, f"About {app_help.APP_NAME}", lambda: app_help.show_about(self), None, "about")

    def _action(self, menu, text, slot, shortcut=None, name: str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        if name:
            self.named_actions[name] = action
        return action

    def show_help(self, title: str, markdown: str) -> app_help.HelpDialog:
        dialog = app_help.HelpDialog(title, markdown, self)
        dialog.show()
        self.help_dialogs = [d for d in self.help_dialogs if d.isVisible()] + [dialog]
        return dialog

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in settings_store.recent_folders():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda *_, f=folder: self.dataset_pane.load(f))
        self.recent_menu.setEnabled(bool(settings_store.recent_folders()))

    # ---------------------------------------------------------------- wiring
    def _build_runs_bar(self) -> None:
        """Resume and queue buttons under the Training pane's Start/Stop."""
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip(
            "Continue the stopped run in its own folder: finished folds are kept, the "
            f"unfinished one continues from its last epoch ({app_help.shortcut('resume_training')})"
        )
        self.queue_button = QPushButton("Queue")
        self.queue_button.setToolTip(
            "Run the current settings after the running one (changing the form later "
            f"does not change a queued run) ({app_help.shortcut('queue_run')})"
        )
        self.queue_label = QLabel("")
        self.queue_label.setWordWrap(True)
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.resume_button)
        row.addWidget(self.queue_button)
        row.addWidget(self.queue_label, 1)
        self.resume_button.clicked.connect(self.resume_run)
        self.queue_button.clicked.connect(self.queue_run)
        self.runs.changed.connect(self._show_runs_state)
        t = self.training_pane
        t.run_started.connect(lambda *_: self._show_runs_state())
        t.run_finished.connect(lambda *_: self._show_runs_state())
        host = t.start_button.parentWidget()
        layout = host.layout() if host is not None else None
        if isinstance(layout, QBoxLayout):
            layout.addWidget(bar)
        else:  # the pane's layout changed: the bar still has a home
            self.statusBar().addPermanentWidget(bar)
        self._show_runs_state()

    def _show_runs_state(self) -> None:
        running = self.training_pane.is_running()
        self.resume_button.setEnabled(self.runs.can_resume())
        self.named_actions["resume_training"].setEnabled(self.runs.can_resume())
        stopped = self.runs.stopped_run
        queue = self.runs.queue
        parts = []
        if stopped is not None and not running:
            parts.append(f"Stopped: {stopped.name}")
        if queue:
            parts.append(f"Queued: {len(queue)} ({'; '.join(p.label for p in queue[:2])}{' …' if len(queue) > 2 else ''})")
        self.queue_label.setText("  ".join(parts))
        self.queue_label.setToolTip("\n".join(p.label for p in queue) or "")

    def _wire(self) -> None:
        d, t, a = self.dataset_pane, self.training_pane, self.attack_pane
        d.folder_opened.connect(self._remember_folder)
        d.scanned.connect(self._on_scanned)
        d.image_table.doubleClicked.connect(self._open_dataset_image)
        t.run_finished.connect(self._on_run_finished)
        a.case_requested.connect(self._open_case)
        a.attack_finished.connect(self._keep_attack)
        a.device = t.form.device()
        t.table_model.modelReset.connect(self._fit_comparison_table)
        a.run_edit.textChanged.connect(a.run_edit.setToolTip)  # a long run path stays readable
        # One fold setting: the Dataset pane's preview shows the split that Training uses.
        d.set_folds(t.form.folds_spin.value())
        d.fold_spin.valueChanged.connect(t.form.folds_spin.setValue)
        t.form.folds_spin.valueChanged.connect(d.fold_spin.setValue)
        t.form.split_box.currentTextChanged.connect(d.set_split)

    def _fit_comparison_table(self) -> None:
        """AUCs and p-values readable at 1024 px without scrolling: headers wrap at their spaces (two
        lines), each column is as wide as its values or its longest header word, the p-value columns
        are shown right after the AUCs (the view's order; the model and exports keep theirs), and the
        method's long name gives way (its tooltip has it). Other columns follow, reached by scrolling."""
        table = self.training_pane.table
        header = table.horizontalHeader()
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap)
        header.setStretchLastSection(False)
        metrics = header.fontMetrics()
        names = [str(table.model().headerData(i, Qt.Orientation.Horizontal) or "") for i in range(header.count())]
        for i, name in enumerate(names):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
            if name == "Name":
                header.resizeSection(i, metrics.horizontalAdvance("Standard training") + 12)
                continue
            words = max((metrics.horizontalAdvance(w) for w in name.split()), default=0)
            two_lines = metrics.horizontalAdvance(name) // 2 + metrics.horizontalAdvance("MM")
            header.resizeSection(i, max(table.sizeHintForColumn(i), words + 12, two_lines))
        p_columns = [i for i, name in enumerate(names) if name.startswith("p ")]
        auc_columns = [i for i, name in enumerate(names) if "AUC" in name]
        if p_columns and auc_columns:
            after = max(header.visualIndex(i) for i in auc_columns)
            for offset, i in enumerate(p_columns, start=1):
                header.moveSection(header.visualIndex(i), min(after + offset, header.count() - 1))
        header.setMinimumHeight(2 * metrics.height() + 8)

    def _remember_folder(self, folder: str) -> None:
        settings_store.add_recent_folder(folder)
        self._fill_recent()

    def _on_scanned(self, scan) -> None:
        self.training_pane.set_dataset(
            str(scan.root),
            self.dataset_pane.labels_path,
            scan.layout,
            lesions=sum(len(getattr(r, "lesions", ()) or ()) for r in scan.images),
            layout_options=self.dataset_pane.label_policy.options_for(scan.layout),
        )
        self.attack_pane.dataset_records = list(scan.images)
        self.statusBar().showMessage(status_line(scan))

    def _open_dataset_image(self, index) -> None:
        self._open_dataset_row(index.row())

    def _open_dataset_row(self, row: int) -> None:
        record = self.dataset_pane.record_at(row)
        if record is not None:
            self._case_source = ("dataset", row)
            self.viewer_pane.show_record(record, self.dataset_pane.scan.images)
            self.tabs.setCurrentWidget(self.viewer_pane)

    def _on_run_finished(self, run_dir: str, status: str) -> None:
        if status == "cancelled":
            self.statusBar().showMessage(f"Training stopped: {run_dir}. Resume ({app_help.shortcut('resume_training')}) continues it.")
        else:
            self.statusBar().showMessage(f"Training {status}: {run_dir}")
        if status != "failed":
            self.attack_pane.device = self.training_pane.form.device()
            self.attack_pane.set_run(run_dir)

    def _keep_attack(self, report: dict) -> None:
        source = self.attack_pane.source or {}
        if source.get("run_dir") and Path(source["run_dir"]).is_dir():
            try:
                save_attack(source["run_dir"], source, report)
            except OSError as exc:  # the attack is on screen; keeping a copy is a convenience
                self.statusBar().showMessage(f"Could not keep the attack report with its run: {exc}")

    def _open_case(self, request: dict) -> None:
        case = request.get("case")
        rows = self.attack_pane.flip_model.rows
        if case is not None and case in rows:
            self._case_source = ("flips", rows.index(case))
        if self.viewer_pane.show_case(request) is not None:
            self.tabs.setCurrentWidget(self.viewer_pane)

    # ---------------------------------------------------------------- shortcuts
    def start_training(self):
        self.tabs.setCurrentWidget(self.training_pane)
        return self.training_pane.start()

    def step_case(self, delta: int) -> int | None:
        """Next/previous case: in the flipped-case list when the viewer shows one, else in the image list."""
        kind, row = self._case_source or ("dataset", self.dataset_pane.current_row())
        if kind == "flips":
            rows = len(self.attack_pane.flip_model.rows)
            new = min(max(row + delta, 0), rows - 1)
            if rows and new != row:
                self.attack_pane.flip_table.selectRow(new)
                self.attack_pane.open_flipped(new)
            return new if rows else None
        rows = self.dataset_pane.image_model.rowCount()
        if not rows:
            return None
        new = min(max(row + delta, 0), rows - 1) if row >= 0 else 0
        self.dataset_pane.select_row(new)
        if self.tabs.currentWidget() is self.viewer_pane:
            self._open_dataset_row(new)
        else:
            self._case_source = ("dataset", new)
        return new

    def toggle_overlay(self) -> str:
        box = self.viewer_pane.overlay_box
        if box.currentText() != "none":
            self._last_overlay = box.currentText()
            box.setCurrentText("none")
        else:
            box.setCurrentText(self._last_overlay)
        return box.currentText()

    def toggle_adversarial(self) -> bool:
        self.viewer_pane.adversarial_box.toggle()
        return self.viewer_pane.adversarial_box.isChecked()

    # ---------------------------------------------------------------- runs
    def resume_run(self):
        try:
            handle = self.runs.resume()
        except Exception as exc:  # noqa: BLE001 - a broken run folder: say which and why
            show_error(self, "Cannot resume", gui_message(str(exc)), str(self.runs.stopped_run))
            return None
        if handle is not None:
            self.tabs.setCurrentWidget(self.training_pane)
        return handle

    def queue_run(self):
        try:
            plan = self.runs.enqueue_current()
        except (RunFolderError, ValueError) as exc:
            show_error(self, "Cannot queue", gui_message(str(exc)))
            return None
        self.statusBar().showMessage(f"Queued: {plan.label}")
        return plan

    def clear_queue(self) -> None:
        self.runs.queue.clear()
        self._show_runs_state()

    def open_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", str(self.training_pane.runs_root))
        if folder:
            self.open_run(folder)

    def open_run(self, folder: str | Path):
        try:
            plan = self.runs.open_run(folder)
        except Exception as exc:  # noqa: BLE001 - not a run folder, unreadable files: one line, the folder named
            show_error(self, "Cannot open the run", gui_message(str(exc)), str(folder))
            return None
        self.tabs.setCurrentWidget(self.training_pane)
        self.statusBar().showMessage(f"Opened run {folder}: {plan.label}")
        return plan

    # ---------------------------------------------------------------- demo data
    def start_demo(self, out_dir: str | Path | None = None, patients: int | None = None, size: tuple[int, int] | None = None) -> TaskHandle:
        """Generate the demo dataset if needed (progress dialog), then open it."""
        self.demo_task = generate_demo(self, out_dir, patients, size, on_ready=lambda path: self.dataset_pane.load(str(path)))
        return self.demo_task

    # ---------------------------------------------------------------- export
    def export_table_dialog(self) -> None:
        run_dir = self.training_pane.run_dir
        if run_dir is None:
            show_error(self, "Nothing to export", "Train a comparison first (Training pane).")
            return
        path, chosen = QFileDialog.getSaveFileName(self, "Export comparison table", str(run_dir / "comparison.csv"), TABLE_FILTER)
        if path:
            ext = {"CSV": ".csv", "Excel": ".xlsx", "Markdown": ".md", "LaTeX": ".tex"}[chosen.split(" ")[0]]
            path = path if Path(path).suffix else path + ext
            self._try(lambda: export_run_table(run_dir, path), "Export failed")

    def plots(self) -> dict:
        """Every plot of the app by file name (each also exports on its own from its right-click menu)."""
        return {
            "training_loss": self.training_pane.loss_plot,
            "validation_auc": self.training_pane.auc_plot,
            "roc": self.attack_pane.roc_plot,
            "auc_vs_eps": self.attack_pane.auc_plot,
        }

    def export_plots_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the plots (SVG, PDF and PNG)")
        if folder:
            self._try(lambda: self.export_plots(folder), "Export failed")

    def export_plots(self, folder: str | Path) -> list[Path]:
        """Every plot with something to show, as SVG, PDF and PNG (empty ones are named, not written)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written, skipped = export_pane_plots(self.plots(), folder)
        if skipped:
            self.statusBar().showMessage("Not exported: " + "; ".join(skipped), 10_000)
        return written

    def export_overlay_dialog(self, name: str = "overlay.png") -> None:
        kinds = "PNG (*.png);;SVG (*.svg);;PDF (*.pdf);;DICOM Secondary Capture (*.dcm)"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export overlay", name, kinds, "DICOM Secondary Capture (*.dcm)" if name.endswith(".dcm") else ""
        )
        if path:  # one figure (or .dcm: DICOM beside each source), full resolution, the name typed (written in a worker)
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
        """What the user points at (command line, file manager, drop): a run folder opens as File → Open
        run, a DICOM folder in the Dataset pane (with a label table beside it), a DICOM file in the Viewer."""
        from arfl_studio.experiments.run_history import is_run_folder

        run = next((p for p in paths if is_run_folder(p)), None)
        folder = next((p for p in paths if Path(p).is_dir() and not is_run_folder(p)), None)
        labels = next((p for p in paths if Path(p).suffix.lower() in (".xlsx", ".csv")), None)
        files = [p for p in paths if Path(p).is_file() and p != labels]
        if run:
            self.open_run(run)
        elif folder:
            self.dataset_pane.load(folder, labels)
            self.tabs.setCurrentWidget(self.dataset_pane)
        elif labels:
            self.dataset_pane.apply_labels(labels)
            self.tabs.setCurrentWidget(self.dataset_pane)
        elif files:
            self.viewer_pane.open_files(files)
            self.tabs.setCurrentWidget(self.viewer_pane)

    # ---------------------------------------------------------------- close
    def _ask_on_close(self) -> bool:
        answer = QMessageBox.question(self, "Work in progress", "A task is still running (training, attack …). Stop it and quit?")
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
