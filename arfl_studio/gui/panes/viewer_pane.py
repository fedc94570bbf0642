"""Viewer pane: the mammogram with window/level, invert, zoom/pan, overlays, two models, tags.

Two layouts: *two models* (the same case through two trained models side by side,
zoom and pan linked, each with its clean and adversarial prediction) and *four
views* (the patient's RCC LCC / RMLO LMLO hanging). Overlays: saliency map or the
perturbation δ (amplified to the full range of a diverging colormap), with opacity;
a toggle swaps in the adversarial image. The DICOM tag panel hides PHI unless asked.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QGridLayout, QGroupBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSlider,
    QSplitter, QStackedWidget, QTableView, QVBoxLayout, QWidget,
)

from arfl_studio.gui import case_analysis, run_access
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.widgets.image_view import DIVERGING, SEQUENTIAL, MammogramView
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.workers import TaskHandle, start_task

OVERLAYS = ("none", "saliency", "perturbation δ")
HANGING = (("RCC", 0, 0), ("LCC", 0, 1), ("RMLO", 1, 0), ("LMLO", 1, 1))


def case_task(run_dir: str, keys: list[str], fold: int, record, attack: str, eps: float, saliency: str):
    def task(report, cancel):
        from arfl_studio.data import MammogramDataset
        from arfl_studio.experiments import load_fold_model

        models = {k: load_fold_model(run_dir, k, fold)[0].eval() for k in keys}
        settings, _config = run_access.preprocess_settings(run_dir)
        x, y = MammogramDataset([record], settings)[0]
        if cancel.is_set():
            return None
        result = case_analysis.analyse_case(models, x, float(y), attack=attack, eps=eps, saliency=saliency)
        result["tags"] = _tags(record)
        result["record"] = record
        return result

    return task


def views_task(records, patient_id: str, record):
    def task(report, cancel):
        return {"views": case_analysis.four_views(records, patient_id), "tags": _tags(record), "record": record}

    return task


def _tags(record) -> list[dict]:
    try:
        return case_analysis.dicom_tags(record.path)
    except Exception as exc:  # the picture matters more than the header
        return [{"tag": "", "keyword": "error", "value": str(exc), "phi": False}]


class ViewerPane(QWidget):
    overlay_ready = Signal()
    views_ready = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.analysis: dict | None = None
        self.request: dict | None = None
        self.tags: list[dict] = []

        self.mode_box = QComboBox()
        self.mode_box.addItems(("Two models", "Four views"))
        self.model_a = QComboBox()
        self.model_b = QComboBox()
        self.overlay_box = QComboBox()
        self.overlay_box.addItems(OVERLAYS)
        self.saliency_box = QComboBox()
        self.saliency_box.addItems(("gradient", "smoothgrad", "integrated-gradients"))
        self.cmap_box = QComboBox()
        self.cmap_box.addItems(SEQUENTIAL)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.opacity.setMaximumWidth(120)
        self.adversarial_box = QCheckBox("Adversarial image")
        self.invert_box = QCheckBox("Invert")
        self.compute_button = QPushButton("Compute")
        self.compute_button.setToolTip("Recompute predictions, δ and saliency for the chosen models")
        controls = QGridLayout()
        pairs = [("Layout", self.mode_box), ("Left model", self.model_a), ("Right model", self.model_b),
                 ("Overlay", self.overlay_box), ("Saliency", self.saliency_box), ("Colormap", self.cmap_box),
                 ("Opacity", self.opacity)]
        for i, (name, widget) in enumerate(pairs):
            controls.addWidget(QLabel(name), 0, i)
            controls.addWidget(widget, 1, i)
        controls.addWidget(self.adversarial_box, 0, len(pairs))
        controls.addWidget(self.invert_box, 1, len(pairs))
        controls.addWidget(self.compute_button, 1, len(pairs) + 1)
        controls.setColumnStretch(len(pairs) + 2, 1)

        self.view_a = MammogramView("Left model")
        self.view_b = MammogramView("Right model")
        self.view_b.link(self.view_a)
        pair = QWidget()
        pair_layout = QHBoxLayout(pair)
        pair_layout.setContentsMargins(0, 0, 0, 0)
        pair_layout.addWidget(self.view_a)
        pair_layout.addWidget(self.view_b)
        self.hanging: dict[str, MammogramView] = {}
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        grid.setContentsMargins(0, 0, 0, 0)
        for name, r, c in HANGING:
            view = MammogramView(name, histogram=False)
            self.hanging[name] = view
            grid.addWidget(view, r, c)
        self.stack = QStackedWidget()
        self.stack.addWidget(pair)
        self.stack.addWidget(grid_widget)

        self.prediction = QLabel("Double-click a flipped case (Attack pane) or an image (Dataset pane).")
        self.prediction.setWordWrap(True)
        self.prediction.setTextFormat(Qt.TextFormat.RichText)
        self.phi_box = QCheckBox("Show PHI tags (names, dates, institution …)")
        self.tag_model = RowsModel([("tag", "Tag"), ("keyword", "Name"), ("value", "Value")])
        self.tag_table = QTableView()
        self.tag_table.setModel(self.tag_model)
        self.tag_table.verticalHeader().setVisible(False)
        self.tag_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tag_table.horizontalHeader().setStretchLastSection(True)
        side = QGroupBox("Prediction and DICOM header")
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.prediction)
        side_layout.addWidget(self.phi_box)
        side_layout.addWidget(self.tag_table, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.stack)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([950, 330])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

        self.mode_box.currentIndexChanged.connect(self.stack.setCurrentIndex)
        for signal in (self.overlay_box.currentIndexChanged, self.cmap_box.currentIndexChanged,
                       self.adversarial_box.toggled):
            signal.connect(lambda *_: self.refresh())
        self.opacity.valueChanged.connect(self._set_opacity)
        self.invert_box.toggled.connect(self._set_invert)
        self.phi_box.toggled.connect(lambda *_: self._fill_tags())
        self.compute_button.clicked.connect(lambda: self.recompute())
        self.saliency_box.currentIndexChanged.connect(lambda *_: self.recompute())

    # ---------------------------------------------------------------- inputs
    def all_views(self) -> list[MammogramView]:
        return [self.view_a, self.view_b, *self.hanging.values()]

    def show_case(self, request: dict) -> TaskHandle | None:
        """A case of a trained run: ``run_dir``, ``method``, ``fold``, ``record``, ``attack``, ``eps``."""
        if request.get("record") is None or not request.get("run_dir"):
            show_error(self, "Cannot open the case", "This case has no image record (a bare checkpoint attack).")
            return None
        self.request = dict(request)
        keys = run_access.run_methods(request["run_dir"])
        for box, default in ((self.model_a, request["method"]), (self.model_b, self._partner(request["method"], keys))):
            box.blockSignals(True)
            box.clear()
            box.addItems(keys)
            box.setCurrentText(default)
            box.blockSignals(False)
        if self.overlay_box.currentText() == "none":
            self.overlay_box.setCurrentText("saliency")
        self.mode_box.setCurrentIndex(0)
        return self.recompute()

    @staticmethod
    def _partner(key: str, keys: list[str]) -> str:
        """The natural comparison: ARFL rows against their base row (B<->A, D<->C, F<->E)."""
        pairs = {"A": "B", "B": "A", "C": "D", "D": "C", "E": "F", "F": "E"}
        partner = pairs.get(key)
        if partner in keys:
            return partner
        others = [k for k in keys if k != key]
        return others[0] if others else key

    def recompute(self) -> TaskHandle | None:
        if self.request is None:
            return None
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        r = self.request
        keys = list(dict.fromkeys([self.model_a.currentText(), self.model_b.currentText()]))
        self.prediction.setText("Computing predictions, δ and saliency …")
        self.task = start_task(case_task(r["run_dir"], keys, int(r["fold"]), r["record"], r.get("attack", "pgd"),
                                         float(r.get("eps") or 0.01), self.saliency_box.currentText()),
                               "viewer", on_done=self._on_case, on_error=self._on_error, parent=self)
        return self.task

    def show_record(self, record, records) -> TaskHandle:
        """A dataset image: the patient's four views."""
        self.mode_box.setCurrentIndex(1)
        self.prediction.setText(f"Patient {record.patient_id}: loading the four views …")
        self.task = start_task(views_task(list(records), record.patient_id, record), "views",
                               on_done=self._on_views, on_error=self._on_error, parent=self)
        return self.task

    def _on_error(self, message: str, details: str) -> None:
        self.prediction.setText(f"Failed: {message}")
        show_error(self, "Viewer", message, (self.request or {}).get("run_dir"), details)

    def _on_views(self, result: dict) -> None:
        for name, view in self.hanging.items():
            view.set_image(result["views"].get(name))
            view.caption.setText("" if name in result["views"] else "(no image)")
        views = list(self.hanging.values())
        for view in views[1:]:
            view.link(views[0])
        self._set_invert(self.invert_box.isChecked())
        record = result["record"]
        self.prediction.setText(f"<b>Patient {record.patient_id}</b> — {'malignant' if record.label else 'benign'} "
                                f"({record.laterality}). Views: {', '.join(sorted(result['views'])) or 'none'}")
        self.tags = result["tags"]
        self._fill_tags()
        self.views_ready.emit()

    def _on_case(self, result: dict | None) -> None:
        if result is None:
            return
        self.analysis = result
        self.tags = result["tags"]
        self._fill_tags()
        names = list(result["models"])
        record = result["record"]
        truth = "malignant" if result["target"] > 0.5 else "benign"
        lines = [f"<b>{record.patient_id} {record.laterality or ''}{record.view or ''}</b> — truth: {truth}<br>"
                 f"attack {self.request.get('attack', 'pgd')}, ε = {float(self.request.get('eps') or 0.01):g}"]
        for name in names:
            m = result["models"][name]
            lines.append(f"<b>{name}</b>: P(malignant) clean {m['clean_prob']:.3f} → adversarial "
                         f"{m['adversarial_prob']:.3f}")
        self.prediction.setText("<br>".join(lines))
        self.refresh(auto_range=True)
        self.overlay_ready.emit()

    # ---------------------------------------------------------------- display
    def refresh(self, auto_range: bool = False) -> None:
        if self.analysis is None:
            return
        names = list(self.analysis["models"])
        pairs = [(self.view_a, self.model_a.currentText()), (self.view_b, self.model_b.currentText())]
        adversarial = self.adversarial_box.isChecked()
        overlay = self.overlay_box.currentText()
        for view, name in pairs:
            m = self.analysis["models"].get(name) or self.analysis["models"][names[0]]
            view.title.setText(f"Method {name}" + (" — adversarial input" if adversarial else " — clean input"))
            view.caption.setText(f"P(malignant): clean {m['clean_prob']:.3f}, adversarial {m['adversarial_prob']:.3f}")
            view.set_image(m["adversarial"] if adversarial else self.analysis["image"], auto_range=auto_range)
            if overlay == "saliency":
                view.set_overlay(m["saliency_adversarial" if adversarial else "saliency_clean"],
                                 self.cmap_box.currentText(), (0.0, 1.0))
            elif overlay.startswith("perturbation"):
                amp = float(np.abs(m["delta"]).max()) or 1.0
                view.set_overlay(m["delta"], DIVERGING, (-amp, amp))
            else:
                view.set_overlay(None)
            view.set_opacity(self.opacity.value() / 100)
        self._set_invert(self.invert_box.isChecked())

    def _set_opacity(self, value: int) -> None:
        for view in self.all_views():
            view.set_opacity(value / 100)

    def _set_invert(self, invert: bool) -> None:
        for view in self.all_views():
            view.set_invert(invert)

    def _fill_tags(self) -> None:
        show = self.phi_box.isChecked()
        rows = [t for t in self.tags if show or not t["phi"]]
        hidden = sum(1 for t in self.tags if t["phi"])
        self.tag_model.set_rows(rows)
        self.phi_box.setText(f"Show PHI tags ({hidden} hidden)" if not show else "Show PHI tags")

    def current_views(self) -> list[MammogramView]:
        return [self.view_a, self.view_b] if self.stack.currentIndex() == 0 else list(self.hanging.values())
