"""The viewer's overlay export: the layout on screen (two models side by side, or the
four-view hanging as a 2 × 2 grid), each image at full resolution with its overlay as
shown, one colour bar and the whole caption; the file's suffix chooses PNG, SVG or PDF.
The blending and the figure are made in a worker (``viewer_tasks.export_task``).

``.dcm`` exports each image with its overlay as a DICOM Secondary Capture beside its source
(``experiments.overlay_dicom``), on the DICOM's own grid, named by method, fold and ε."""

from __future__ import annotations

from pathlib import Path

from arfl_studio.data.dicom.secondary_capture import series_description
from arfl_studio.experiments import viewer_tasks as tasks
from arfl_studio.experiments.overlay_dicom import dicom_export_task, instance_paths
from arfl_studio.gui.dialogs import show_error
from arfl_studio.gui.widgets.image_view import MammogramView, overlay_lut
from arfl_studio.gui.workers import TaskHandle, start_task

HANGING_CELLS = {"RCC": (0, 0), "LCC": (0, 1), "RMLO": (1, 0), "LMLO": (1, 1)}


def screen_positions(pane) -> list[tuple[MammogramView, tuple[int, int]]]:
    """The views that show an image, with their (row, column) on screen."""
    if pane.stack.currentIndex() == 0:
        cells = [(pane.view_a, (0, 0)), (pane.view_b, (0, 1))]
    else:
        cells = [(view, HANGING_CELLS.get(name, (0, i))) for i, (name, view) in enumerate(pane.hanging.items())]
    return [(view, cell) for view, cell in cells if view.gray is not None]


def export_layout(pane, path: str) -> TaskHandle:
    views = screen_positions(pane)
    if not views:
        raise ValueError("the viewer shows no image to export: open a case first")
    panels = [
        {
            "title": v.title.text(),
            "gray": v.gray,
            "heat": v.native_overlay if v.overlay_visible() else None,
            "opacity": v.opacity(),
            "gray_levels": v.gray_levels(),
            "invert": v.inverted,
            "heat_levels": v.heat_levels,
            "aspect": (v.spacing[0] / v.spacing[1]) if v.spacing else 1.0,
            "position": cell,
        }
        for v, cell in views
    ]
    first = views[0][0]
    return start_task(
        tasks.export_task(
            panels,
            path,
            overlay_lut(first.cmap, first.heat_threshold),
            first.heat_levels,
            first.heat_label if first.overlay_visible() else "",
            caption(pane, first),
        ),
        "export",
        on_error=lambda m, d: show_error(pane, "Export failed", m, None, d),
        parent=pane,
    )


def caption(pane, view: MammogramView) -> str:
    """Case, models, map, ε, input and space: what the figure shows, in one line (wrapped, never cut)."""
    analysis = pane.analysis
    record = (analysis or {}).get("record")
    case = f"{record.patient_id} {record.laterality or ''}{record.view or ''}" if record is not None else ""
    models = (
        (
            f"models {pane.model_a.currentText()} | {pane.model_b.currentText()}"
            if pane.stack.currentIndex() == 0
            else f"model {pane.model_a.currentText()}"
        )
        if analysis
        else "no model"
    )
    overlay = pane.overlay_box.currentText() if view.overlay_visible() else "no overlay"
    if overlay == "saliency":
        overlay = f"saliency ({pane.saliency_box.currentText()}, {view.heat_label})"
    eps = f"ε = {analysis['eps']:g} ({analysis['attack']})" if analysis else ""
    space = "native DICOM grid" if pane.native_space() else "model input"
    input_kind = "adversarial input" if pane.adversarial_box.isChecked() else "clean input"
    return " · ".join(p for p in (case, models, overlay, eps, input_kind, space) if p)


def shown_images(pane) -> list[tuple[MammogramView, dict, str, str]]:
    """(view, its image, its model, a label for its file) of each view that shows an image."""
    key_a, key_b = pane.model_a.currentText(), pane.model_b.currentText()
    if pane.stack.currentIndex() == 0:
        case = getattr(pane, "case_image", None)
        rows = [(pane.view_a, case, key_a, key_a or "A"), (pane.view_b, case, key_b, key_b if key_b != key_a else f"{key_b}-2")]
    else:
        rows = [(view, pane.views.get(name), key_a, name) for name, view in pane.hanging.items()]
    return [row for row in rows if row[0].gray is not None and row[1] and "path" in row[1]]


def export_dicom(pane, path: str) -> TaskHandle:
    """Each image on screen with its overlay as a Secondary Capture (one file, or one per image)."""
    if not pane.native_space():
        raise ValueError("a DICOM export lies on the DICOM's own pixel grid: choose Space: Native (as acquired) first")
    if pane.analysis is None or pane.request is None:
        raise ValueError("open a case of a trained run first: the DICOM export names the overlay's method, fold and ε")
    shown = [row for row in shown_images(pane) if row[0].overlay_visible()]
    if not shown:
        raise ValueError("no view shows an overlay to export (Overlay: saliency or perturbation δ)")
    # the dialog asked before replacing the name typed; the names made from it are never replaced
    taken = [p.name for p in instance_paths(path, [row[3] for row in shown]) if p.exists() and p != Path(path)]
    if taken:
        raise ValueError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}: choose another name")
    fold = pane.request.get("fold")
    overlay = (
        f"saliency {pane.saliency_box.currentText()}" if pane.overlay_box.currentText() == "saliency" else f"δ {pane.analysis['attack']}"
    )
    overlay += " (adversarial input)" if pane.adversarial_box.isChecked() else ""
    panels = [
        {
            "label": label,
            "source": image["path"],
            "series": key,
            "description": series_description(overlay, key, "final" if fold is None else int(fold) + 1, float(pane.analysis["eps"])),
            "gray": v.gray,
            "heat": v.native_overlay,
            "opacity": v.opacity(),
            "gray_levels": v.gray_levels(),
            "invert": v.inverted,
            "heat_levels": v.heat_levels,
        }
        for v, image, key, label in shown
    ]
    first = shown[0][0]
    return start_task(
        dicom_export_task(panels, path, overlay_lut(first.cmap, first.heat_threshold)),
        "export",
        on_error=lambda m, d: show_error(pane, "Export failed", m, None, d),
        parent=pane,
    )
