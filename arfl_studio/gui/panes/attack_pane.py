"""Attack pane: attack a trained fold (or a checkpoint) and see what breaks.

ROC curves clean vs adversarial, the AUC-vs-ε curve, the sanity-check warnings in
plain words, and the cases whose prediction flipped (double-click: open in viewer).
The evaluation is :func:`arfl_studio.evaluation.evaluate_robustness` in a worker.
"""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
    QProgressBar, QPushButton, QSpinBox, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from arfl_studio.gui import run_access
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.widgets.curves import ThrottledPlot
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task

ATTACKS = ("pgd", "fgsm", "pgd-strong", "apgd", "square")
DEFAULT_EPS = "0.0001, 0.001, 0.01"


def parse_eps(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"ε must be numbers separated by commas, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise ValueError(f"ε must be one or more values >= 0, got {text!r}")
    return sorted(set(values))


def attack_task(source: dict, attack: str, eps: list[float], steps: int, restarts: int, device: str):
    def task(report, cancel):
        from arfl_studio.evaluation.robustness import evaluate_robustness

        if source.get("checkpoint"):
            model, spec, records, dataset = run_access.checkpoint_on_records(
                source["checkpoint"], source["records"], source["size"])
        else:
            model, spec, records, dataset = run_access.held_out(source["run_dir"], source["method"], source["fold"])
        report(("progress", 0, 1))
        result = evaluate_robustness(
            model, dataset, attack=attack, eps=eps, steps=steps, restarts=restarts, records=records,
            device=device, callback=lambda p: report(("progress", p.done, p.total), lossy=True), cancel=cancel,
            batch_size=32)
        return {"report": result.to_json(), "records": records, "source": dict(source, records=None)}

    return task


class AttackPane(QWidget):
    attack_finished = Signal(dict)
    case_requested = Signal(dict)  # {"run_dir", "method", "fold", "record", ...}

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.report: dict | None = None
        self.records = []
        self.source: dict | None = None
        self.dataset_records = []  # from the dataset pane, for checkpoint attacks
        self.device = "auto"

        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("run folder (or a checkpoint .pt)")
        browse_run = QPushButton("Run…")
        browse_ckpt = QPushButton("Checkpoint…")
        self.method_box = QComboBox()
        self.fold_box = QComboBox()
        self.attack_box = QComboBox()
        self.attack_box.addItems(ATTACKS)
        self.eps_edit = QLineEdit(DEFAULT_EPS)
        self.eps_edit.setToolTip("one or more ε (pixel scale, [0, 1]) separated by commas")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 1000)
        self.steps_spin.setValue(10)
        self.restarts_spin = QSpinBox()
        self.restarts_spin.setRange(1, 100)
        self.restarts_spin.setValue(1)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 1024)
        self.size_spin.setValue(64)
        self.size_spin.setToolTip("input size for a bare checkpoint (runs use their own preprocessing)")
        self.run_button = QPushButton("Run attack")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.progress = QProgressBar()
        form_box = QGroupBox("Model and attack")
        form = QFormLayout(form_box)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_edit, 1)
        run_row.addWidget(browse_run)
        run_row.addWidget(browse_ckpt)
        form.addRow("Trained run:", run_row)
        form.addRow("Method:", self.method_box)
        form.addRow("Fold (held-out):", self.fold_box)
        form.addRow("Attack:", self.attack_box)
        form.addRow("ε (list):", self.eps_edit)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Restarts:", self.restarts_spin)
        form.addRow("Checkpoint input px:", self.size_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.progress)

        self.summary = QLabel("Train a run (Training pane) or pick one, then run an attack.")
        self.summary.setWordWrap(True)
        self.warnings = QLabel("")
        self.warnings.setWordWrap(True)
        self.warnings.setTextFormat(Qt.TextFormat.RichText)
        self.flip_eps_box = QComboBox()
        self.flip_model = RowsModel([("id", "Case"), ("patient_id", "Patient"), ("laterality", "Side"),
                                     ("view", "View"), ("label", "Label"), ("clean_prob", "P(malignant) clean"),
                                     ("adversarial_prob", "P(malignant) adversarial")])
        self.flip_table = QTableView()
        self.flip_table.setModel(self.flip_model)
        self.flip_table.verticalHeader().setVisible(False)
        self.flip_table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.flip_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.flip_table.horizontalHeader().setStretchLastSection(True)
        self.flip_table.setToolTip("Double-click a case to open it in the viewer")
        flips = QGroupBox("Cases whose prediction flipped (double-click: open in viewer)")
        flips_layout = QVBoxLayout(flips)
        row = QHBoxLayout()
        row.addWidget(QLabel("at ε ="))
        row.addWidget(self.flip_eps_box)
        row.addStretch(1)
        flips_layout.addLayout(row)
        flips_layout.addWidget(self.flip_table)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(form_box)
        left_layout.addWidget(self.summary)
        left_layout.addWidget(self.warnings)
        left_layout.addStretch(1)

        self.roc_plot = ThrottledPlot("ROC: clean (solid) vs adversarial", "false positive rate", "true positive rate")
        self.roc_plot.setRange(xRange=(0, 1), yRange=(0, 1))
        self.auc_plot = ThrottledPlot("AUC vs ε", "log10 ε", "AUC")
        self.auc_plot.setYRange(0, 1)
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
            for k in run_access.run_folds(path, key):
                self.fold_box.addItem(f"Fold {k + 1}", k)

    def current_source(self) -> dict:
        path = self.run_edit.text().strip()
        if path.endswith(".pt"):
            if not self.dataset_records:
                raise ValueError("a bare checkpoint is attacked on the open dataset: open one first")
            return {"checkpoint": path, "records": list(self.dataset_records), "size": self.size_spin.value()}
        if not path or not Path(path).is_dir():
            raise ValueError("choose a trained run folder or a checkpoint first")
        if self.fold_box.currentData() is None:
            raise ValueError(f"{path} has no trained fold yet")
        return {"run_dir": path, "method": self.method_box.currentText(), "fold": int(self.fold_box.currentData())}

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
        self.progress.setRange(0, 0)
        self.summary.setText("Attacking …")
        self.task = start_task(
            attack_task(source, self.attack_box.currentText(), eps, self.steps_spin.value(),
                        self.restarts_spin.value(), self.device),
            "attack", on_event=self._on_event, on_done=self._on_done, on_error=self._on_error, parent=self)
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        return self.task

    def stop(self) -> None:
        if self.is_running():
            self.task.cancel()

    def _on_event(self, payload) -> None:
        if payload[0] == "progress":
            self.progress.setRange(0, max(payload[2], 1))
            self.progress.setValue(payload[1])

    def _on_error(self, message: str, details: str) -> None:
        self._idle()
        self.summary.setText(f"Attack failed: {message}")
        where = (self.source or {}).get("run_dir") or (self.source or {}).get("checkpoint")
        if "cancelled" not in message:
            show_error(self, "Attack failed", message, where, details)

    def _idle(self) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _on_done(self, result: dict) -> None:
        self._idle()
        self.show_report(result["report"], result["records"])
        self.attack_finished.emit(result["report"])

    # ---------------------------------------------------------------- results
    def show_report(self, report: dict, records=()) -> None:
        self.report, self.records = report, list(records)
        clean = report["clean"]
        self.roc_plot.remove_all()
        self.auc_plot.remove_all()
        self.roc_plot.set_curve("chance", [0, 1], [0, 1], color="#aaaaaa", dash=True, name="chance")
        self.roc_plot.set_curve("clean", clean["roc"]["fpr"], clean["roc"]["tpr"], color="#1f77b4",
                                name=f"clean AUC {clean['auc']:.3f}")
        palette = ["#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
        for i, r in enumerate(report["results"]):
            self.roc_plot.set_curve(f"eps{r['eps']}", r["roc"]["fpr"], r["roc"]["tpr"], color=palette[i % len(palette)],
                                    dash=True, name=f"ε={r['eps']:g} AUC {r['auc']:.3f}")
        curve = report["auc_curve"]
        eps = [math.log10(e) for e in curve["eps"] if e > 0]
        aucs = [a for e, a in zip(curve["eps"], curve["adversarial_auc"]) if e > 0]
        self.auc_plot.set_curve("adv", eps, aucs, color="#d62728", name="adversarial", symbol="o")
        if eps:
            self.auc_plot.set_curve("clean", [min(eps), max(eps)], [clean["auc"]] * 2, color="#1f77b4", dash=True,
                                    name="clean")
        self.roc_plot.flush()
        self.auc_plot.flush()
        flips = ", ".join(f"ε={r['eps']:g}: {r['flipped_count']}" for r in report["results"])
        self.summary.setText(
            f"<b>{report['attack']}</b> on {report['n']} held-out images ({report['n_positive']} malignant). "
            f"Clean AUC {clean['auc']:.3f}. Flipped predictions — {flips}.")
        warnings = report.get("warnings", [])
        if warnings:
            items = "".join(f"<li><b>{w.get('name', '')}</b>: {w.get('message', '')}</li>" for w in warnings)
            self.warnings.setText(f"<span style='color:#b00000'><b>⚠ Sanity checks failed — the numbers above may "
                                  f"overstate robustness:</b></span><ul>{items}</ul>")
        else:
            self.warnings.setText("<span style='color:#006000'>✔ Sanity checks passed (stronger attacks did not "
                                  "help less, gradients are non-zero).</span>")
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
        rows = results[i]["flipped"] if 0 <= i < len(results) else []
        self.flip_model.set_rows([dict(r, label="malignant" if r.get("label") else "benign") for r in rows])

    def _open_case(self, index) -> None:
        self.open_flipped(index.row())

    def open_flipped(self, row: int) -> dict | None:
        if not 0 <= row < len(self.flip_model.rows):
            return None
        case = self.flip_model.rows[row]
        i = case.get("index")
        record = self.records[i] if i is not None and i < len(self.records) else None
        request = dict(self.source or {}, record=record, case=case, eps=self.flip_eps_box.currentData(),
                       attack=self.attack_box.currentText(), records=None)
        self.case_requested.emit(request)
        return request
