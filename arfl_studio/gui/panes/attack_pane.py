"""Attack pane: attack a trained fold (or a checkpoint) and see what breaks.

ROC curves clean vs adversarial, the AUC-vs-ε curve, the sanity-check warnings in
plain words, and the cases whose prediction flipped (double-click: open in viewer).
The evaluation is :func:`arfl_studio.evaluation.evaluate_robustness` in a worker.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from arfl_studio.experiments.figures import EmptyFigure, auc_eps_figure, roc_figure
from arfl_studio.experiments import run_access
from arfl_studio.gui.dialogs import show_error
from arfl_studio.evaluation.report_text import checks_text, flip_note_text, pct, summary_text
from arfl_studio.experiments.attack_task import (  # noqa: F401 - parse_eps is also this pane's API (tests)
    LARGE_EPS,
    attack_task,
    default_probes,
    parse_eps,
)
from arfl_studio.gui.panes.attack_controls import build_controls
from arfl_studio.gui.widgets.curves import ThrottledPlot
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task


class AttackPane(QWidget):
    attack_finished = Signal(dict)
    case_requested = Signal(dict)  # {"run_dir", "method", "fold", "record", ...}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.report: dict | None = None
        self.records = []
        self.deltas: dict = {}
        self.source: dict | None = None
        self.dataset_records = []  # from the dataset pane, for checkpoint attacks
        self.device = "auto"

        browse_run, browse_ckpt = build_controls(self)  # the controls become the pane's attributes
        form_box = QGroupBox("Model and attack")
        form = QFormLayout(form_box)
        run_row = QHBoxLayout()
        run_row.addWidget(browse_run)
        run_row.addWidget(browse_ckpt)
        form.addRow("Trained run:", self.run_edit)  # the path gets the whole row: readable at 1024 px
        form.addRow("", run_row)
        form.addRow("Method:", self.method_box)
        form.addRow("Fold (held-out):", self.fold_box)
        form.addRow("Attack:", self.attack_box)
        form.addRow("ε (list):", self.eps_edit)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Restarts:", self.restarts_spin)
        form.addRow("Checkpoint input px:", self.size_spin)
        checks_box = QGroupBox("Sanity checks (reference attacks at the same ε)")
        checks = QFormLayout(checks_box)
        for box in self.check_boxes.values():
            checks.addRow(box)
        checks.addRow(self.large_box)
        checks.addRow("Square queries:", self.queries_spin)
        checks.addRow("Images for the checks:", self.subset_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)

        self.summary = QLabel("Train a run (Training pane) or pick one, then run an attack.")
        self.summary.setWordWrap(True)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.RichText)
        self.flip_eps_box = QComboBox()
        self.flip_model = RowsModel(
            [
                ("id", "Case"),
                ("patient_id", "Patient"),
                ("laterality", "Side"),
                ("view", "View"),
                ("label", "Label"),
                ("clean_prob", "P(malignant) clean"),
                ("adversarial_prob", "P(malignant) adversarial"),
            ]
        )
        self.flip_table = QTableView()
        self.flip_table.setModel(self.flip_model)
        self.flip_table.verticalHeader().setVisible(False)
        self.flip_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.flip_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.flip_table.horizontalHeader().setStretchLastSection(True)
        self.flip_table.setToolTip("Double-click a case to open it in the viewer; click a header to sort")
        self.flip_table.setSortingEnabled(True)
        self.flip_note = QLabel("")
        self.flip_note.setWordWrap(True)
        flips = QGroupBox("Cases whose decision flipped at the model's threshold (double-click: open in viewer)")
        flips_layout = QVBoxLayout(flips)
        row = QHBoxLayout()
        row.addWidget(QLabel("at ε ="))
        row.addWidget(self.flip_eps_box)
        row.addStretch(1)
        flips_layout.addLayout(row)
        flips_layout.addWidget(self.flip_note)
        flips_layout.addWidget(self.flip_table)

        settings = QWidget()
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(form_box)
        settings_layout.addWidget(checks_box)
        settings_layout.addWidget(self.summary)
        settings_layout.addWidget(self.warnings)
        settings_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(settings)
        scroll.setWidgetResizable(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addWidget(self.plan_label)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.progress)
        left_layout.addWidget(self.stage_label)

        self.roc_plot = ThrottledPlot("ROC: clean (solid) vs adversarial", "false positive rate", "true positive rate")
        self.roc_plot.setRange(xRange=(0, 1), yRange=(0, 1))
        self.auc_plot = ThrottledPlot("AUC vs ε", "log10 ε", "AUC (%)")
        self.auc_plot.setYRange(0, 100)
        self.roc_plot.figure_source = lambda path: self._figure(roc_figure, path)
        self.auc_plot.figure_source = lambda path: self._figure(auc_eps_figure, path)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.roc_plot)
        plots.addWidget(self.auc_plot)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(plots)
        right.addWidget(flips)
        right.setSizes([450, 300])
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([380, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        browse_run.clicked.connect(self._browse_run)
        browse_ckpt.clicked.connect(self._browse_checkpoint)
        self.run_edit.editingFinished.connect(lambda: self.set_run(self.run_edit.text()))
        self.method_box.currentTextChanged.connect(self._fill_folds)
        self.run_button.clicked.connect(lambda: self.run_attack())
        self.stop_button.clicked.connect(self.stop)
        self.flip_eps_box.currentIndexChanged.connect(lambda _i: self._fill_flips())
        self.flip_table.doubleClicked.connect(self._open_case)
        self.attack_box.currentTextChanged.connect(self._attack_changed)
        for widget in (*self.check_boxes.values(), self.large_box):
            widget.toggled.connect(lambda _on: self._update_plan())
        for spin in (self.steps_spin, self.restarts_spin, self.queries_spin, self.subset_spin):
            spin.valueChanged.connect(lambda _v: self._update_plan())
        self.eps_edit.textChanged.connect(lambda _t: self._update_plan())
        self._attack_changed(self.attack_box.currentText())
        self._started_at = 0.0
        self._stopping = False

    # ---------------------------------------------------------------- source
    def _browse_run(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "A training run folder")
        if folder:
            self.set_run(folder)

    def _browse_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "A checkpoint", "", "Checkpoints (*.pt)")
        if path:
            self.set_run(path)

    def set_run(self, path: str | Path) -> None:
        path = str(path)
        self.run_edit.setText(path)
        self.method_box.blockSignals(True)
        self.method_box.clear()
        if Path(path).is_dir():
            self.method_box.addItems(run_access.run_methods(path))
        self.method_box.blockSignals(False)
        self._fill_folds(self.method_box.currentText())

    def _fill_folds(self, key: str) -> None:
        self.fold_box.clear()
        path = self.run_edit.text()
        if key and Path(path).is_dir():
            models = run_access.fold_models(path, key)
            several_seeds = len({m.seed for m in models}) > 1
            for m in models:
                label = f"Fold {m.fold + 1}" + (f" · seed {m.seed}" if several_seeds else "")
                self.fold_box.addItem(label, m.to_dict())

    def select_model(self, source: dict) -> None:
        """Point the method and fold boxes at ``source``'s model (a report opened from its record),
        so the pane never shows one model's report under another's name."""
        if not source.get("run_dir") or Path(source["run_dir"]) != Path(self.run_edit.text().strip() or "."):
            return
        if self.method_box.findText(str(source.get("method"))) < 0:
            return
        self.method_box.setCurrentText(str(source["method"]))  # refills the folds
        for i in range(self.fold_box.count()):
            model = self.fold_box.itemData(i) or {}
            seed_ok = source.get("seed") is None or model.get("seed") == source.get("seed")
            if int(model.get("fold", -1)) == int(source.get("fold") or 0) and seed_ok:
                self.fold_box.setCurrentIndex(i)
                return

    def current_source(self) -> dict:
        path = self.run_edit.text().strip()
        if path.endswith(".pt"):
            if not self.dataset_records:
                raise ValueError("a bare checkpoint is attacked on the open dataset: open one first")
            # a checkpoint that records its input is evaluated on exactly that input; the box is for older ones
            recorded, _where = run_access.recorded_preprocess(path)
            size = None if recorded is not None else self.size_spin.value()
            return {"checkpoint": path, "records": list(self.dataset_records), "size": size}
        if not path or not Path(path).is_dir():
            raise ValueError("choose a trained run folder or a checkpoint first")
        if self.fold_box.currentData() is None:
            raise ValueError(f"{path} has no trained fold yet")
        model = self.fold_box.currentData()
        return {"run_dir": path, "method": model["method"], "fold": int(model["fold"]), "seed": model["seed"]}

    # ---------------------------------------------------------------- what runs
    def _attack_changed(self, attack: str) -> None:
        defaults = default_probes(attack)
        for name, box in self.check_boxes.items():
            box.setEnabled(name != attack)
            box.setChecked(name in defaults and name != attack)
        self._update_plan()

    def checks(self) -> dict:
        """The sanity checks chosen: reference attacks, Square's query budget, large ε, image subset."""
        attack = self.attack_box.currentText()
        return {
            "probes": [n for n, box in self.check_boxes.items() if box.isChecked() and n != attack],
            "probe_queries": self.queries_spin.value(),
            "large_eps": self.large_box.isChecked(),
            "subset": self.subset_spin.value(),
        }

    def plan_text(self) -> str:
        """What the attack will run, with its cost in forward passes per image (the core's estimate)."""
        from arfl_studio.evaluation.progress import attack_units

        attack = self.attack_box.currentText()
        try:
            n_eps = len(parse_eps(self.eps_edit.text()))
        except ValueError:
            n_eps = 0
        checks = self.checks()
        steps, restarts, queries = self.steps_spin.value(), self.restarts_spin.value(), checks["probe_queries"]
        main = attack_units(attack, steps, restarts, queries) * n_eps
        probe_cost = sum(attack_units(p, 10, 1, queries) for p in checks["probes"]) * n_eps
        large = attack_units(attack, steps, restarts, queries) if checks["large_eps"] else 0
        subset = f"{checks['subset']} images" if checks["subset"] else "every image"
        names = ", ".join(p.upper() if p != "square" else f"Square ({queries} queries)" for p in checks["probes"]) or "none"
        share = (probe_cost + large) / max(main + probe_cost + large, 1)
        return (
            f"<b>Runs:</b> {attack.upper()} at {n_eps} ε: {main} passes per image. "
            f"<b>Checks:</b> {names}{f', large ε {LARGE_EPS:g}' if large else ''} on {subset}: "
            f"{probe_cost + large} passes per image ({share:.0%} of the work on all images)."
        )

    def _update_plan(self) -> None:
        self.plan_label.setText(self.plan_text())

    # ---------------------------------------------------------------- run
    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def run_attack(self) -> TaskHandle | None:
        if self.is_running():
            return self.task
        try:
            source = self.current_source()
            eps = parse_eps(self.eps_edit.text())
        except ValueError as exc:
            show_error(self, "Cannot attack", str(exc))
            return None
        self.source = source
        self._stopping = False
        self._started_at = time.perf_counter()
        self.progress.setRange(0, 0)  # busy until the first progress event
        self.progress.setFormat("%p%")
        self.stage_label.setText("Loading the model and the held-out images …")
        self.summary.setText("Attacking …")
        self.task = start_task(
            attack_task(
                source, self.attack_box.currentText(), eps, self.steps_spin.value(), self.restarts_spin.value(), self.device, self.checks()
            ),
            "attack",
            on_event=self._on_event,
            on_done=self._on_done,
            on_error=self._on_error,
            parent=self,
        )
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        return self.task

    def stop(self) -> None:
        if self.is_running():
            self._stopping = True
            self.task.cancel()
            self.stop_button.setEnabled(False)
            self.stage_label.setText("Stopping after the current attack step …")

    def _on_event(self, payload) -> None:
        if payload[0] != "progress" or self._stopping:
            return
        p = payload[1]
        total = max(int(p.get("total") or 1), 1)
        fraction = min(max(p.get("done", 0) / total, 0.0), 1.0)
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(fraction * 1000))
        text = p.get("message") or p.get("stage") or "attack"
        eta = p.get("eta_s")
        if eta is None and fraction > 0.01:
            elapsed = time.perf_counter() - self._started_at
            eta = elapsed * (1 - fraction) / fraction
        if eta is not None and p.get("stage") != "done":
            text += f" · ETA {int(eta // 60)}:{int(eta % 60):02d}"
        self.stage_label.setText(f"Running: {text}")

    def _on_error(self, message: str, details: str) -> None:
        if self._stopping or "Cancelled" in message or "cancelled" in message:
            self._show_stopped()
            return
        self._idle()
        self.progress.setFormat("failed")
        self.stage_label.setText("")
        self.summary.setText(f"Attack failed: {message}")
        where = (self.source or {}).get("run_dir") or (self.source or {}).get("checkpoint")
        show_error(self, "Attack failed", message, where, details)

    def _show_stopped(self) -> None:
        self._idle()
        self.progress.setValue(0)
        self.progress.setFormat("stopped")
        self.stage_label.setText("")
        self.summary.setText("Attack stopped. Press Run attack to start again.")

    def _idle(self) -> None:
        self.progress.setRange(0, 1000)
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _on_done(self, result: dict) -> None:
        if self._stopping or result.get("cancelled"):
            self._show_stopped()
            return
        self._idle()
        self.progress.setValue(1000)
        self.progress.setFormat("done")  # "%p%" again on the next run
        seconds = (result["report"].get("seconds") or {}).get("total")
        self.stage_label.setText(f"Finished in {seconds:.0f} s." if seconds else "Finished.")
        self.show_report(result["report"], result["records"], result.get("deltas"))
        self.attack_finished.emit(result["report"])

    # ---------------------------------------------------------------- results
    def model_title(self) -> str:
        """Which model the report is about: run, method and fold (or the checkpoint)."""
        source = self.source or {}
        if source.get("checkpoint"):
            return f"checkpoint {Path(source['checkpoint']).name}"
        if source.get("run_dir"):
            seed = "" if source.get("seed") is None else f" · seed {source['seed']}"
            return f"{Path(source['run_dir']).name} · method {source.get('method')} · fold {int(source.get('fold', 0)) + 1}{seed}"
        return ""

    def _figure(self, draw, path) -> Path:
        if not self.report:
            raise EmptyFigure("nothing to plot yet: run an attack first (Attack pane → Run attack)")
        return draw(self.report, path, model=self.model_title())

    def show_report(self, report: dict, records=(), deltas: dict | None = None, source: dict | None = None) -> None:
        """``deltas``: {(eps, index): δ} of the flipped cases, handed to the viewer with each case.
        ``source``: the model the report was made on (a saved report's own record), when it is not
        the one this pane just attacked; the title and the viewer then follow the record."""
        if source is not None:
            self.source = dict(source)
            self.select_model(source)
        self.report, self.records = report, list(records)
        self.deltas = dict(deltas or {})
        clean = report["clean"]
        model = self.model_title()
        self.roc_plot.remove_all()
        self.auc_plot.remove_all()
        self.roc_plot.setTitle(
            f"ROC: clean (solid) vs adversarial — {model}" if model else "ROC: clean vs adversarial", color="#222", size="11pt"
        )
        self.roc_plot.set_curve("chance", [0, 1], [0, 1], color="#aaaaaa", dash=True, name="chance")
        self.roc_plot.set_curve("clean", clean["roc"]["fpr"], clean["roc"]["tpr"], color="#1f77b4", name=f"clean AUC {pct(clean['auc'])}")
        palette = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        for i, r in enumerate(report["results"]):
            self.roc_plot.set_curve(
                f"eps{r['eps']}",
                r["roc"]["fpr"],
                r["roc"]["tpr"],
                color=palette[i % len(palette)],
                dash=True,
                name=f"ε={r['eps']:g} AUC {pct(r['auc'])}",
            )
        curve = report["auc_curve"]
        eps = [math.log10(e) for e in curve["eps"] if e > 0]
        aucs = [100 * a for e, a in zip(curve["eps"], curve["adversarial_auc"]) if e > 0]
        self.auc_plot.set_curve("adv", eps, aucs, color="#d62728", name="adversarial", symbol="o")
        if eps:
            self.auc_plot.set_curve("clean", [min(eps), max(eps)], [100 * clean["auc"]] * 2, color="#1f77b4", dash=True, name="clean")
        self.roc_plot.flush()
        self.auc_plot.flush()
        self.summary.setText(summary_text(report))
        self.warnings.setText(checks_text(report))
        self.flip_eps_box.blockSignals(True)
        self.flip_eps_box.clear()
        for r in report["results"]:
            self.flip_eps_box.addItem(f"{r['eps']:g}", r["eps"])
        self.flip_eps_box.setCurrentIndex(self.flip_eps_box.count() - 1)
        self.flip_eps_box.blockSignals(False)
        self._fill_flips()

    def _fill_flips(self) -> None:
        if not self.report:
            return
        i = self.flip_eps_box.currentIndex()
        results = self.report["results"]
        result = results[i] if 0 <= i < len(results) else None
        rows = result["flipped"] if result else []
        self.flip_model.set_rows([dict(r, label="malignant" if r.get("label") else "benign") for r in rows])
        header = self.flip_table.horizontalHeader()
        if header.sortIndicatorSection() >= 0:  # keep the user's sort across ε
            self.flip_model.sort(header.sortIndicatorSection(), header.sortIndicatorOrder())
        self.flip_note.setText(flip_note_text(self.report, result) if result else "")

    def _open_case(self, index) -> None:
        self.open_flipped(index.row())

    def open_flipped(self, row: int) -> dict | None:
        if not 0 <= row < len(self.flip_model.rows):
            return None
        case = self.flip_model.rows[row]
        i = case.get("index")
        record = self.records[i] if i is not None and i < len(self.records) else None
        eps = self.flip_eps_box.currentData()
        delta = self.deltas.get((float(eps), int(i))) if i is not None and eps is not None else None
        request = dict(
            self.source or {},
            record=record,
            case=case,
            eps=eps,
            delta=delta,
            attack=self.report.get("attack") or self.attack_box.currentText(),
            records=None,
        )
        self.case_requested.emit(request)
        return request
