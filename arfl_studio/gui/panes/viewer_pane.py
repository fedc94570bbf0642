"""Viewer pane: the mammogram as acquired, with saliency and δ registered on it.

Two layouts: *two models* (the case through two trained models side by side, zoom
and pan linked by physical position) and *four views* (the patient's RCC LCC / RMLO LMLO
hanging, each with the first model's overlay); a strip beside them lists every view of the
patient and opens one alone (``viewer_views``). *Space*: the DICOM at native resolution and
orientation, in mm (maps brought back through the preprocessing geometry), or the
model input "as the model sees it". Window/level in the image's modality units
(``viewer_window``): right-drag (horizontal = width, vertical = level), the C/W fields,
every header window as a preset, double-click resets; optionally linked; every new case
starts from its header window. The DICOM tag panel hides PHI unless asked.
"""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSplitter,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from arfl_studio.experiments import run_access
from arfl_studio.gui.dialogs import show_error
from arfl_studio.evaluation.hanging import name_of
from arfl_studio.experiments import viewer_tasks as tasks
from arfl_studio.gui.panes import viewer_views
from arfl_studio.gui.panes import viewer_window as window_controls
from arfl_studio.gui.panes.viewer_controls import build_controls
from arfl_studio.gui.panes.viewer_export import export_dicom, export_layout
from arfl_studio.gui.panes.viewer_text import prediction_text, view_caption
from arfl_studio.gui.widgets.image_view import DIVERGING, SEQUENTIAL, MammogramView
from arfl_studio.gui.widgets.tables import RowsModel
from arfl_studio.gui.widgets.view_link import ViewLink
from arfl_studio.gui.workers import TaskHandle, start_task

HANGING = (("RCC", 0, 0), ("LCC", 0, 1), ("RMLO", 1, 0), ("LMLO", 1, 1))
SALIENCY_NOTE = {"gradient": "|∂z/∂x|", "smoothgrad": "SmoothGrad |∂z/∂x|", "integrated-gradients": "|IG|"}


def _marker(image: dict, native: bool) -> tuple[str, str]:
    """Marker text and corner: away from the chest wall (native), right of it (model input)."""
    text = " ".join(v for v in (image.get("laterality"), image.get("view")) if v)
    if not native:
        return (text + " · model input").strip(" ·"), "right"
    chest_wall_right = bool(image.get("geometry", {}).get("flip"))
    return text, "left" if chest_wall_right else "right"


class ViewerPane(QWidget):
    overlay_ready = Signal()
    views_ready = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.task: TaskHandle | None = None
        self.export_handle: TaskHandle | None = None
        self.analysis: dict | None = None  # the case: {"case", "views", ...}
        self.request: dict | None = None
        self.views: dict[str, dict] = {}
        self.tags: list[dict] = []
        self._new_case = False
        self._shown_path = None  # the case on screen: another one starts from its own header window
        self.analysed_name = self.shown_view = ""  # the analysed case's view name; the view shown alone

        controls = build_controls(self)  # the controls' widgets become the pane's attributes (setupUi style)

        self.view_a = MammogramView("Left model")
        self.view_b = MammogramView("Right model")
        self.pair_link = ViewLink([self.view_a, self.view_b])  # zoom and pan by physical position
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
            view = MammogramView(name)
            self.hanging[name] = view
            grid.addWidget(view, r, c)
        self.hanging_link = ViewLink()
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
        self.view_strip = viewer_views.build_strip(self)  # every view of the patient, beside the hanging
        side_layout.addWidget(self.view_strip)
        side_layout.addWidget(self.phi_box)
        side_layout.addWidget(self.tag_table, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.stack)
        splitter.addWidget(side)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([1000, 300])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

        self.mode_box.currentIndexChanged.connect(self._layout_changed)
        self.overlay_box.currentIndexChanged.connect(self._overlay_changed)
        for signal in (
            self.cmap_box.currentIndexChanged,
            self.adversarial_box.toggled,
            self.space_box.currentIndexChanged,
            self.model_b.currentIndexChanged,
        ):
            signal.connect(lambda *_: self.refresh())
        self.space_box.currentIndexChanged.connect(lambda *_: self._fit_all())
        self.model_a.currentIndexChanged.connect(lambda *_: self.recompute())
        self.opacity.valueChanged.connect(self._set_opacity)
        self.threshold_spin.valueChanged.connect(self._set_threshold)
        self.invert_box.toggled.connect(self._set_invert)
        self.lesion_box.toggled.connect(self._show_lesions)
        self.preset_box.activated.connect(lambda *_: window_controls.apply_preset(self, self.preset_box.currentText()))
        self.centre_spin.valueChanged.connect(lambda *_: window_controls.edit_window(self))
        self.width_spin.valueChanged.connect(lambda *_: window_controls.edit_window(self))
        self.phi_box.toggled.connect(lambda *_: self._fill_tags())
        self.compute_button.clicked.connect(lambda: self.recompute())
        self.saliency_box.currentIndexChanged.connect(lambda *_: self.recompute())
        for view in self.all_views():
            view.levels_changed.connect(lambda lo, hi, v=view: window_controls.levels_changed(self, v, lo, hi))
        self._enable_controls()

    # ---------------------------------------------------------------- state
    def all_views(self) -> list[MammogramView]:
        return [self.view_a, self.view_b, *self.hanging.values()]

    def current_views(self) -> list[MammogramView]:
        return [self.view_a, self.view_b] if self.stack.currentIndex() == 0 else list(self.hanging.values())

    def native_space(self) -> bool:
        return self.space_box.currentIndex() == 0

    def _has_models(self) -> bool:
        return self.analysis is not None

    def _enable_controls(self) -> None:
        """Controls that do nothing in the current layout or without a trained run are disabled."""
        models = self._has_models()
        four = self.stack.currentIndex() == 1
        self.model_a_label.setText("Model" if four else "Left model")
        for widget in (
            self.model_a,
            self.overlay_box,
            self.saliency_box,
            self.opacity,
            self.cmap_box,
            self.adversarial_box,
            self.compute_button,
            self.space_box,
        ):
            widget.setEnabled(models)
        self.model_b.setEnabled(models and not four)
        overlay = self.overlay_box.currentText() != "none"
        self.cmap_box.setEnabled(models and overlay)
        self.opacity.setEnabled(models and overlay)
        self.threshold_spin.setEnabled(models and overlay)
        images = [getattr(self, "case_image", None), *self.views.values()]
        self.lesion_box.setEnabled(any((i or {}).get("lesions", {}).get("native") for i in images))
        for widget, label in self.labels.items():
            label.setEnabled(widget.isEnabled())

    def _layout_changed(self, index: int) -> None:
        self.stack.setCurrentIndex(index)
        self._enable_controls()
        window_controls.fill_presets(self)

    def _overlay_changed(self, *_):
        """The colormap control lists the maps of the chosen overlay (diverging for δ)."""
        wanted = DIVERGING if self.overlay_box.currentText().startswith("perturbation") else SEQUENTIAL
        if tuple(self.cmap_box.itemText(i) for i in range(self.cmap_box.count())) != wanted:
            self.cmap_box.blockSignals(True)
            self.cmap_box.clear()
            self.cmap_box.addItems(wanted)
            self.cmap_box.blockSignals(False)
        self._enable_controls()
        self.refresh()

    # ---------------------------------------------------------------- inputs
    def show_case(self, request: dict) -> TaskHandle | None:
        """A case of a trained run: ``run_dir``, ``method``, ``fold``, ``record``, ``attack``, ``eps``,
        optionally ``case`` (the Attack pane's flipped row: its δ and attack settings)."""
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
        return self.recompute(new_case=True)

    @staticmethod
    def _partner(key: str, keys: list[str]) -> str:
        """The natural comparison: ARFL rows against their base row (B<->A, D<->C, F<->E)."""
        pairs = {"A": "B", "B": "A", "C": "D", "D": "C", "E": "F", "F": "E"}
        partner = pairs.get(key)
        if partner in keys:
            return partner
        others = [k for k in keys if k != key]
        return others[0] if others else key

    def recompute(self, new_case: bool = False) -> TaskHandle | None:
        if self.request is None:
            return None
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        self._new_case = self._new_case or new_case
        request = dict(self.request)  # the attack's own δ is used for request["method"], whichever box holds it
        keys = list(dict.fromkeys([self.model_a.currentText(), self.model_b.currentText()]))
        self.prediction.setText("Computing predictions, δ and saliency …")
        self.task = start_task(
            tasks.case_task(request, keys, self.saliency_box.currentText()),
            "viewer",
            on_done=self._on_case,
            on_error=self._on_error,
            parent=self,
        )
        return self.task

    def show_record(self, record, records) -> TaskHandle:
        """A dataset image: the patient's views as acquired (no model)."""
        self.request = None
        self.analysis = None
        self._new_case = True
        self.mode_box.setCurrentIndex(1)
        self.prediction.setText(f"Patient {record.patient_id}: loading the views …")
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        self.task = start_task(
            tasks.views_task(list(records), record), "views", on_done=self._on_views, on_error=self._on_error, parent=self
        )
        return self.task

    def open_files(self, paths: list[str]) -> TaskHandle:
        """DICOM files the user pointed at: the first one and its patient's other views (see ``files_task``)."""
        self.request = None
        self.analysis = None
        self._new_case = True
        self.prediction.setText(f"Loading {html.escape(str(paths[0]))} …")
        if self.task is not None and self.task.is_running():
            self.task.cancel()
        self.task = start_task(
            tasks.files_task([str(p) for p in paths]), "views", on_done=self._on_views, on_error=self._on_error, parent=self
        )
        return self.task

    def _on_error(self, message: str, details: str) -> None:
        self.clear(f"Could not load: {message}")
        show_error(self, "Viewer", message, (self.request or {}).get("run_dir"), details)

    def clear(self, reason: str = "") -> None:
        """No image, header or prediction of an earlier case stays on screen; ``reason`` says why, in place."""
        self.analysis, self.case_image, self.views, self.tags = None, None, {}, []
        self._shown_path = None
        self._new_case = True
        self.refresh()
        for view in self.all_views():
            view.title.setText("")
            view.caption.setText(reason)
        self.prediction.setText(html.escape(reason))
        self._fill_tags()
        self._enable_controls()
        viewer_views.fill_strip(self)

    def _on_views(self, result: dict | None) -> None:
        if result is None:
            return
        self.views = result["views"]
        record = result["record"]
        self._mark_new(record)
        name = self.shown_view = name_of(self.views, record)
        self.case_image = self.views.get(name)
        self.mode_box.setCurrentIndex(1 if name in self.hanging else 0)  # a view outside the hanging: alone
        viewer_views.fill_strip(self)
        self._enable_controls()
        self.refresh(auto_range=True)
        label = {None: "label unknown (a file opened on its own)", 0: "benign", 1: "malignant"}.get(record.label, "")
        self.prediction.setText(
            f"<b>Patient {html.escape(record.patient_id)}</b> — {label} "
            f"({record.laterality}). Views: {', '.join(sorted(self.views)) or 'none'}. "
            "Open a case from the Attack pane to see a model's maps."
        )
        self.tags = result["tags"]
        self._fill_tags()
        self.views_ready.emit()

    def _mark_new(self, record) -> None:
        path = str(getattr(record, "path", ""))
        self._new_case = self._new_case or path != self._shown_path
        self._shown_path = path

    def _on_case(self, result: dict | None) -> None:
        if result is None:
            return
        self._mark_new(result["record"])
        self.analysis = result
        self.case_image = result["case"]
        self.views = result["views"]
        self.analysed_name = self.shown_view = name_of(self.views, result["record"])
        viewer_views.fill_strip(self)
        self.tags = result["tags"]
        self._fill_tags()
        self._enable_controls()
        self.prediction.setText(prediction_text(result))
        self.refresh(auto_range=True)
        self.overlay_ready.emit()
        self.views_ready.emit()

    # ---------------------------------------------------------------- display
    def _overlay_spec(self, eps: float | None) -> tuple[str | None, tuple[float, float], str]:
        overlay = self.overlay_box.currentText()
        adversarial = self.adversarial_box.isChecked()
        if overlay == "saliency":
            method = self.saliency_box.currentText()
            key = "saliency_adversarial" if adversarial else "saliency_clean"
            return key, (0.0, 1.0), f"saliency {SALIENCY_NOTE.get(method, method)}, min–max scaled per image"
        if overlay.startswith("perturbation"):
            return "delta", (-eps, eps), f"δ in [0, 1] image units, ε = {eps:g}"
        return None, (0.0, 1.0), ""

    def _show(self, view: MammogramView, image: dict | None, model: str | None, keep_levels: bool, auto_range: bool) -> None:
        if image is None or "error" in image:
            view.set_image(None)
            view.set_overlay(None)
            view.set_marker("")
            return
        native = self.native_space() or "model_input" not in image
        m = (image.get("models") or {}).get(model) if model else None
        adversarial = self.adversarial_box.isChecked() and m is not None
        if native:
            pixels = m["adversarial_native"] if adversarial else image.get("pyramid", image["pixels"])
            view.set_image(
                pixels,
                auto_range=auto_range,
                spacing=image.get("spacing"),
                keep_levels=keep_levels,
                presets=image.get("presets"),
                scale=image.get("scale"),
            )
        else:
            view.set_image(
                m["adversarial"] if adversarial else image["model_input"],
                auto_range=auto_range,
                spacing=None,
                keep_levels=keep_levels,
                presets={"Model input": (0.0, 1.0)},
            )
        view.set_marker(*_marker(image, native))
        view.set_lesions((image.get("lesions") or {}).get("native" if native else "model"))
        view.lesions.set_visible(self.lesion_box.isChecked())
        eps = float(self.analysis["eps"]) if self.analysis else 0.0
        key, levels, label = self._overlay_spec(eps)
        if m is None or key is None:
            view.set_overlay(None)
        else:
            if key == "delta" and not levels[1] > 0:
                amp = float(np.abs(m["delta"]).max()) or 1.0
                levels = (-amp, amp)
            if native:
                from arfl_studio.data.preprocess.geometry import Geometry, model_to_native

                geometry, fit, model_map = Geometry.from_dict(image["geometry"]), image["fit"], m[key]
                view.set_overlay(
                    m["native"][key],
                    self.cmap_box.currentText(),
                    levels,
                    label,
                    step=image["step"],
                    full=lambda: model_to_native(model_map, geometry, fit),
                )
            else:
                view.set_overlay(m[key], self.cmap_box.currentText(), levels, label)
        view.set_opacity(self.opacity.value() / 100)

    def refresh(self, auto_range: bool = False) -> None:
        keep = not self._new_case
        auto_range = auto_range or self._new_case
        case = getattr(self, "case_image", None)
        if self.analysis is not None:
            a, b = self.model_a.currentText(), self.model_b.currentText()
            where = "" if case is self.analysis["case"] else f"{self.shown_view} · "  # another view of the patient
            for view, name in ((self.view_a, a), (self.view_b, b)):
                self._show(view, case, name, keep, auto_range)
                side = " — adversarial input" if self.adversarial_box.isChecked() else " — clean input"
                view.title.setText(f"{where}Method {name}{side}")
                view.caption.setText(view_caption(case, name))
        else:
            self._show(self.view_a, case, None, keep, auto_range)
            self._show(self.view_b, None, None, keep, auto_range)
            self.view_a.title.setText(f"{self.shown_view or 'Image'} as acquired" if case is not None else "")
            # no model: no numbers of an earlier case's; an unreadable view says why
            self.view_a.caption.setText(view_caption(case, None) if case is not None else "")
            self.view_b.caption.setText("")
            self.view_b.title.setText("")
        first = self.model_a.currentText() if self.analysis is not None else None
        for name, view in self.hanging.items():
            image = self.views.get(name)
            self._show(view, image, first, keep, auto_range)
            m = (image or {}).get("models", {}).get(first) if image else None
            view.title.setText(f"{name}" + (f" — method {first}" if m is not None else ""))
            view.caption.setText(view_caption(image, first))
        self._new_case = False
        self._set_invert(self.invert_box.isChecked())
        window_controls.fill_presets(self)
        self._link_zoom()

    def _link_zoom(self) -> None:
        self.hanging_link.set_views([v for v in self.hanging.values() if v.gray is not None])

    def _fit_all(self) -> None:
        for view in self.all_views():
            view.fit()

    def _set_threshold(self, value: int) -> None:
        for view in self.all_views():
            view.set_threshold(value / 100)

    def _set_opacity(self, value: int) -> None:
        for view in self.all_views():
            view.set_opacity(value / 100)

    def _show_lesions(self, visible: bool) -> None:
        for view in self.all_views():
            view.lesions.set_visible(visible)

    def _set_invert(self, invert: bool) -> None:
        for view in self.all_views():
            view.set_invert(invert)

    def _fill_tags(self) -> None:
        show = self.phi_box.isChecked()
        rows = [t for t in self.tags if show or not t["phi"]]
        hidden = sum(1 for t in self.tags if t["phi"])
        self.tag_model.set_rows(rows)
        self.phi_box.setText(f"Show PHI tags ({hidden} hidden)" if not show else "Show PHI tags")

    # ---------------------------------------------------------------- export
    def export_overlay(self, path: str) -> TaskHandle:
        """The current layout as on screen, at full resolution, to exactly ``path`` (suffix: .png/.svg/.pdf);
        ``.dcm``: each image as a DICOM Secondary Capture beside its source (``viewer_export.export_dicom``)."""
        dicom = str(path).lower().endswith(".dcm")
        self.export_handle = (export_dicom if dicom else export_layout)(self, str(path))
        return self.export_handle
