"""Training pane: queue methods, run the cross-validated comparison, watch it live.

The run is :func:`arfl_studio.experiments.run_experiment` in a worker. Its events
(``FoldEvent`` wrapping the engine's step/epoch/status events, ``FoldFinished``)
arrive as signals; step events are throttled in the worker, curves are redrawn by
the plots' own timers, so the UI thread only ever does a little bookkeeping.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from PySide6.QtCore import Qt

from arfl_studio.experiments.figures import EmptyFigure, classification_loss, training_figure
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.widgets.curves import ThrottledPlot, color_for
from arfl_studio.gui.widgets.settings_form import SettingsForm
from arfl_studio.experiments.result_tables import PARTIAL_TEST, folds_text, mean_std_text
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task
from arfl_studio.training import EpochEvent, StatusEvent, StepEvent


def training_task(config: dict, out_dir: Path):
    def task(report, cancel):
        from arfl_studio.experiments import load_config, run_experiment

        def callback(event):
            inner = getattr(event, "event", None)
            report(event, lossy=isinstance(inner, StepEvent))

        return run_experiment(load_config(config), out_dir, callback=callback, cancel=cancel)

    return task


def auc_text(mean: float | None, std: float | None) -> str:
    """An AUC (fraction) as the tables print it: percent, "mean ± sample std" over folds."""
    return mean_std_text(mean, std, missing="-")


def mean_sample_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample std (ddof = 1, as collect/results.json); std is None for one value."""
    values = [v for v in values if v is not None and v == v]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


AUC_UNIT = "AUC (%, mean ± sample std over folds)"


def final_columns(row: dict) -> list[tuple[str, str]]:
    """The comparison table's columns, as the exported tables print them: AUCs in percent as
    mean ± std, sensitivity / specificity at each fold model's threshold, then the p-values."""
    columns = [
        ("key", "Method"),
        ("method", "Name"),
        ("folds", "Folds"),
        ("standard", "Standard AUC (%)"),
        ("adversarial", "Adversarial AUC (%)"),
        ("mean_auc_pct", "Mean AUC (%)"),
    ]
    if row.get("standard_sensitivity") is not None:
        columns += [("rates", "Sens / spec (%)"), ("adversarial_rates", "Adv. sens / spec (%)")]
    for k in row:
        if k.startswith("p_") and "_vs_" in k and not k.endswith(("_partial", "_folds")):
            metric, ref = k[2:].split("_vs_", 1)
            columns.append((k, f"p vs {ref} ({metric.replace('_auc', '').replace('_', ' ')})"))
    return columns


def _rates(sensitivity, specificity) -> str:
    return "-" if sensitivity is None or specificity is None else f"{100 * sensitivity:.0f} / {100 * specificity:.0f}"


def _p_text(p) -> str:
    return "" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def format_row(row: dict) -> dict:
    out = dict(row)
    for name in ("standard", "adversarial"):
        out[name] = auc_text(row.get(f"{name}_auc"), row.get(f"{name}_auc_std"))
    out["mean_auc_pct"] = auc_text(row.get("mean_auc"), None)
    out["rates"] = _rates(row.get("standard_sensitivity"), row.get("standard_specificity"))
    out["adversarial_rates"] = _rates(row.get("adversarial_sensitivity"), row.get("adversarial_specificity"))
    if "folds_declared" in row:  # "2/5 †": rows on fewer folds than the run declares are marked
        out["folds"] = folds_text(row)
    for k in row:
        if k.startswith("p_") and not k.endswith(("_partial", "_folds")):
            out[k] = _p_text(row[k]) + (f" {PARTIAL_TEST}" if row.get(f"{k}_partial") else "")
    return out


LOSS_CHOICES = (
    ("cls", "L_cls — classification loss (comparable across methods)"),
    ("total", "Total objective (incl. λ·L_robust / TRADES term)"),
)


class TrainingPane(QWidget):
    run_started = Signal(str)
    run_finished = Signal(str, str)  # run folder, status ("finished", "cancelled", "failed")

    def __init__(self, devices: list[str] | None = None, parent=None):
        super().__init__(parent)
        self.runs_root = Path.home() / "ARFL Studio runs"
        self.data_section: dict | None = None
        self.task: TaskHandle | None = None
        self.run_dir: Path | None = None
        self.last_error: str | None = None
        self.history: dict[tuple[str, int], dict[str, list[float]]] = {}
        self.fold_results: dict[str, dict[tuple, tuple[float, float]]] = defaultdict(dict)  # key -> (seed, fold) -> AUCs
        self.method_names: dict[str, str] = {}
        self._plan = (1, 1, 1)  # methods, folds, epochs
        self._method_order: list[str] = []
        self._started_at = 0.0
        self._steps_per_epoch: int | None = None

        self.form = SettingsForm(devices)
        scroll = QScrollArea()
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(330)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.status_label = QLabel("Open a dataset, choose methods, press Start.")
        self.status_label.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left_layout.addLayout(buttons)

        self.fold_box = QComboBox()
        self.fold_box.addItem("Fold 1")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("%p%")
        self.eta_label = QLabel("")
        head = QHBoxLayout()
        head.addWidget(QLabel("Curves of:"))
        head.addWidget(self.fold_box)
        head.addWidget(self.progress, 1)
        head.addWidget(self.eta_label)
        self.loss_box = QComboBox()
        for key, text in LOSS_CHOICES:
            self.loss_box.addItem(text, key)
        self.loss_box.setToolTip(
            "L_cls (binary cross-entropy) compares methods; the total objective of ARFL rows\n"
            "includes λ·L_robust, which is negative, so totals are not comparable across methods."
        )
        head.addWidget(QLabel("Loss:"))
        head.addWidget(self.loss_box)
        self.loss_plot = ThrottledPlot("", "epoch", "")
        self.auc_plot = ThrottledPlot("Validation AUC — solid: standard, dashed: adversarial", "epoch", "AUC (%)")
        self.auc_plot.setYRange(0, 100)
        self._title_loss_plot()
        self.loss_plot.figure_source = lambda path: self.export_figure(self.loss_kind(), path)
        self.auc_plot.figure_source = lambda path: self.export_figure("auc", path)
        self.table_model = RowsModel(self._live_columns())
        self.table = QTableView()
        self.table.setModel(self.table_model)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip(
            AUC_UNIT + "; p: two-sided Mann–Whitney U on the fold AUCs.\n"
            "The exported tables (File → Export comparison table…) use the same percent and std."
        )
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        rows_visible = 5  # the paper's comparisons have several rows: show them without scrolling
        self.table.setMinimumHeight(self.table.verticalHeader().defaultSectionSize() * (rows_visible + 1) + 4)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.auc_plot)
        right_split = QSplitter(Qt.Orientation.Vertical)
        right_split.addWidget(plots)
        right_split.addWidget(self.table)
        right_split.setStretchFactor(0, 2)
        right_split.setStretchFactor(1, 1)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(head)
        right_layout.addWidget(right_split, 1)
        self.table_note = QLabel()  # the split and the label rule of the table's run, as the exports say them
        self.table_note.setWordWrap(True)
        right_layout.addWidget(self.table_note)
        right_layout.addWidget(self.status_label)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([360, 900])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

        self.start_button.clicked.connect(lambda: self.start())
        self.stop_button.clicked.connect(self.stop)
        self.fold_box.currentIndexChanged.connect(lambda _i: self._redraw_all())
        self.loss_box.currentIndexChanged.connect(lambda _i: (self._title_loss_plot(), self._redraw_all()))

    @staticmethod
    def _live_columns() -> list[tuple[str, str]]:
        return [
            ("key", "Method"),
            ("name", "Name"),
            ("folds", "Folds done"),
            ("standard_auc", "Standard AUC (%)"),
            ("adversarial_auc", "Adversarial AUC (%)"),
        ]

    def loss_kind(self) -> str:
        return self.loss_box.currentData() or "cls"

    def _title_loss_plot(self) -> None:
        cls = self.loss_kind() == "cls"
        self.loss_plot.setTitle(
            "Classification loss L_cls (epoch mean)" if cls else "Total training objective (epoch mean)", color="#222", size="11pt"
        )
        self.loss_plot.getPlotItem().setLabel("left", "L_cls (BCE)" if cls else "total loss", color="#222")

    def export_figure(self, kind: str, path) -> Path:
        """The publication figure of this run's curves (every fold, mean ± std), as the CLI draws it."""
        if self.run_dir is None or not Path(self.run_dir).is_dir():
            raise EmptyFigure("nothing to plot yet: train a comparison first (Training pane → Start)")
        return training_figure(self.run_dir, kind, path)

    # ---------------------------------------------------------------- control
    def set_dataset(
        self, root: str, labels: str | None = None, layout: str = "auto", demo: bool = False, lesions: int = 0, layout_options=None
    ) -> None:
        """The dataset to train on, with the Dataset pane's label policies (``layout_options``); real
        films with lesion marks (``lesions`` > 0) are offered the real-data recipe, the demo's phantoms
        the form's small CNN."""
        self.data_section = {"demo": True, "root": str(root)} if demo else {"root": str(root), "layout": layout, **(layout_options or {})}
        if labels and not demo:
            self.data_section["labels"] = str(labels)
        self.form.offer_recipe("real_cpu" if lesions and not demo else "form")

    def is_running(self) -> bool:
        return self.task is not None and self.task.is_running()

    def start(self, out_dir: str | Path | None = None, config: dict | None = None, methods=None) -> TaskHandle | None:
        """Start the form's settings, or (``config``, ``methods``) given by gui/runs.py (resume, queue)."""
        if self.is_running():
            return self.task
        if self.data_section is None and config is None:
            show_error(self, "No dataset", "Open a dataset first (Dataset pane).")
            return None
        try:
            config = config or self.form.config_dict(self.data_section)
            methods = methods or self.form.methods()
        except ValueError as exc:
            show_error(self, "Invalid settings", str(exc))
            return None
        if not methods:
            show_error(self, "No method", "Tick at least one method (or add a custom one) to train.")
            return None
        self.run_dir = Path(out_dir) if out_dir else self.runs_root / datetime.now().strftime("run-%Y%m%d-%H%M%S")
        self._reset(methods, config)
        if (self.run_dir / "config.toml").is_file():  # Resume: the run goes on where its files stop
            from arfl_studio.experiments.run_history import Plan

            self.replay(Plan(config, list(methods), self.run_dir))
        self.task = start_task(
            training_task(config, self.run_dir),
            "training",
            on_event=self._on_event,
            on_done=self._on_done,
            on_error=self._on_error,
            parent=self,
        )
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status_label.setText(f"Training {len(methods)} method(s) × {self._plan[1]} fold(s) → {self.run_dir}")
        self.run_started.emit(str(self.run_dir))
        return self.task

    def stop(self) -> None:
        if self.is_running():
            self.task.cancel()
            self.status_label.setText("Stopping after the current step …")
            self.stop_button.setEnabled(False)

    def _reset(self, methods, config) -> None:
        self.history.clear()
        self.fold_results.clear()
        self.last_error = None
        self._method_order = [m.key for m in methods]
        self.method_names = {m.key: m.name for m in methods}
        self._mix_ratios = {m.key: m.mix_ratio if m.scheme in ("mix", "dsbn") else None for m in methods}
        folds = 1 if config["cv"].get("split") == "official" else config["cv"]["folds"]
        self.table_note.setText("")
        self._plan = (len(methods), folds, config["training"]["epochs"])
        self._started_at = time.perf_counter()
        self._done_before = 0.0  # the share of the run already done when this session started (Resume)
        self._steps_per_epoch = None
        self.fold_box.blockSignals(True)
        self.fold_box.clear()
        self.fold_box.addItems([f"Fold {k + 1}" for k in range(folds)])
        self.fold_box.blockSignals(False)
        self.loss_plot.remove_all()
        self.auc_plot.remove_all()
        # Fixed x range (the run's epochs) and AUC range: the axes are drawn once, not
        # re-laid-out every epoch. Markers only where there are few points.
        epochs = config["training"]["epochs"]
        marks = epochs <= 30
        for plot in (self.loss_plot, self.auc_plot):
            plot.setXRange(0.5, epochs + 0.5, padding=0.02)
        self.auc_plot.setYRange(0, 100, padding=0.02)
        for key in self._method_order:
            self.loss_plot.curve(key, name=key, symbol="o" if marks else None)  # the table below names the methods
            # Same colour as the method's loss curve; the dash tells standard from adversarial (the
            # title says so), so the legend needs one entry per method.
            self.auc_plot.curve(f"{key}/std", name=key, color=color_for(key), symbol="o" if marks else None)
            self.auc_plot.curve(
                f"{key}/adv", name=f"{key} adversarial", color=color_for(key), dash=True, symbol="t" if marks else None, in_legend=False
            )
        self.table_model.columns = self._live_columns()
        self.table_model.set_rows(
            [
                {"key": k, "name": self.method_names[k], "folds": f"0/{folds}", "standard_auc": "-", "adversarial_auc": "-"}
                for k in self._method_order
            ]
        )
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.eta_label.setText("")

    def replay(self, plan) -> None:
        """The run folder's epochs and finished folds into the curves and table (Open run, Resume);
        the ETA then counts only the work left, at the pace of this session."""
        from arfl_studio.experiments.run_history import replay_events

        try:
            events = replay_events(plan.out_dir, plan)
        except (OSError, ValueError, KeyError):
            events = []  # a folder without readable history: the curves start empty
        for event in events:
            self._on_event(event)
        self._redraw_all()
        self._done_before = self.progress.value() / 1000
        self._started_at = time.perf_counter()
        self.eta_label.setText("")

    # ---------------------------------------------------------------- events
    def _on_event(self, event) -> None:
        inner = getattr(event, "event", None)
        key = getattr(event, "method_key", None)
        fold = getattr(event, "fold", 0)
        if inner is None and hasattr(event, "standard_auc"):  # FoldFinished
            self._fold_finished(key, (getattr(event, "seed", None), fold), event.standard_auc, event.adversarial_auc)
            return
        if isinstance(inner, StepEvent):
            self._steps_per_epoch = inner.steps_per_epoch or self._steps_per_epoch
            frac = (inner.step + 1) / inner.steps_per_epoch if inner.steps_per_epoch else 0.0
            self._update_progress(key, fold, inner.epoch + frac)
        elif isinstance(inner, EpochEvent):
            h = self.history.setdefault((key, fold), {"epoch": [], "cls": [], "total": [], "std": [], "adv": []})
            if inner.epoch + 1 in h["epoch"]:  # a fold that restarts (no resume.pt): its epochs are new ones
                keep = h["epoch"].index(inner.epoch + 1)
                for values in h.values():
                    del values[keep:]
            h["epoch"].append(inner.epoch + 1)
            h["cls"].append(classification_loss(inner.losses, self._mix_ratios.get(key)))
            h["total"].append(inner.losses.get("total", float("nan")))
            h["std"].append(100 * inner.metrics.get("standard_auc", float("nan")))
            h["adv"].append(100 * inner.metrics.get("adversarial_auc", float("nan")))
            self._update_progress(key, fold, inner.epoch + 1)
            if fold == self.fold_box.currentIndex():
                self._redraw(key)
        elif isinstance(inner, StatusEvent) and inner.status not in ("started", "finished"):
            self.status_label.setText(f"{key} fold {fold + 1}: {inner.status} {inner.message}")

    def _update_progress(self, key, fold, epochs_done: float) -> None:
        n_methods, n_folds, n_epochs = self._plan
        mi = self._method_order.index(key) if key in self._method_order else 0
        done = ((mi * n_folds + fold) * n_epochs + epochs_done) / max(n_methods * n_folds * n_epochs, 1)
        done = min(max(done, 0.0), 1.0)
        self.progress.setValue(int(done * 1000))
        elapsed = time.perf_counter() - self._started_at
        done_here = done - self._done_before  # a resumed run's earlier epochs took no time in this session
        if done_here > 0.01:
            left = elapsed * (1 - done) / done_here
            self.eta_label.setText(f"ETA {int(left // 60)}:{int(left % 60):02d}")

    def _redraw(self, key: str) -> None:
        h = self.history.get((key, self.fold_box.currentIndex()))
        if h is None:
            for k in (key, f"{key}/std", f"{key}/adv"):
                plot = self.loss_plot if k == key else self.auc_plot
                plot.set_curve(k, [], [])
            return
        self.loss_plot.set_curve(key, h["epoch"], h[self.loss_kind()])
        self.auc_plot.set_curve(f"{key}/std", h["epoch"], h["std"])
        self.auc_plot.set_curve(f"{key}/adv", h["epoch"], h["adv"])

    def _redraw_all(self) -> None:
        for key in self._method_order:
            self._redraw(key)

    def _fold_finished(self, key, fold: tuple, standard, adversarial) -> None:
        self.fold_results[key][fold] = (standard, adversarial)
        results = self.fold_results[key]
        for row in self.table_model.rows:
            if row["key"] == key:
                row["folds"] = f"{len(results)}/{self._plan[1]}"
                row["standard_auc"] = auc_text(*mean_sample_std([s for s, _ in results.values()]))
                row["adversarial_auc"] = auc_text(*mean_sample_std([a for _, a in results.values()]))
        self.table_model.set_rows(self.table_model.rows)

    def _on_done(self, result) -> None:
        status = getattr(result, "status", "finished")
        self._finish_ui()
        if status == "cancelled":
            self._show_ended("stopped")
        else:
            self.progress.setValue(1000)
            self.eta_label.setText("done")
        self._fill_final_table()
        self.status_label.setText(f"Run {status}: {self.run_dir}")
        self.run_finished.emit(str(self.run_dir), status)

    def _fill_final_table(self) -> None:
        try:
            from arfl_studio.experiments import collect, comparison_rows
            from arfl_studio.experiments.result_tables import data_notes

            results = collect(self.run_dir)
            rows = comparison_rows(results)
        except Exception:
            return  # the live table stays
        self.table_note.setText(" ".join(data_notes(results)))
        if rows:
            self.table_model.columns = final_columns(rows[0])
            self.table_model.set_rows([format_row(r) for r in rows])

    def _show_ended(self, word: str) -> None:
        """A stopped or failed run: no ETA left ticking, the bar says what happened."""
        done = self.progress.value() / 10
        self.progress.setValue(0)
        self.progress.setFormat(f"{word} at {done:.0f} %")
        self.eta_label.setText(word)

    def _on_error(self, message: str, details: str) -> None:
        self._finish_ui()
        self._show_ended("failed")
        self.last_error = message
        self.status_label.setText(f"Training failed: {message}")
        show_error(self, "Training failed", message, str(self.run_dir), details)
        self.run_finished.emit(str(self.run_dir), "failed")

    def _finish_ui(self) -> None:
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
