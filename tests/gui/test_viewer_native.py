"""The viewer in native space, on a phantom with a known lesion: registration of the maps,
mm readout, window/level by mouse, presets, export at full resolution."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lesion_phantom import BrightSpotModel, write_phantom
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from arfl_studio.data import PreprocessSettings
from arfl_studio.data.preprocess.transform import preprocess_pixels
from arfl_studio.data.dicom.windows import window_text
from arfl_studio.evaluation import case_analysis
from arfl_studio.gui.panes import viewer_window as window_controls
from arfl_studio.gui.panes.viewer_pane import ViewerPane

from .conftest import wait_task

SETTINGS = PreprocessSettings(size=(32, 32), channels=1)


def phantom_case(tmp_path, laterality="L", view="CC", spacing=(0.1, 0.1)):
    """What the case worker returns, for the phantom and the bright-spot model."""
    path, lesion, breast = write_phantom(tmp_path / f"{laterality}{view}.dcm", laterality, view, spacing)
    image = case_analysis.native_image(path, SETTINGS)
    model_input, _ = preprocess_pixels(image["pixels"], SETTINGS)
    x = torch.from_numpy(model_input[None].copy())
    result = case_analysis.analyse_case({"M": BrightSpotModel().eval()}, x, 1.0, "pgd", 0.02, "gradient", attack_settings={"steps": 2})
    image.update(model_input=result["image"], models=result["models"])
    case_analysis.add_native_maps(image)
    record = SimpleNamespace(patient_id="PH-0001", laterality=laterality, view=view, label=1, path=path)
    return (
        {
            "case": image,
            "views": {f"{laterality}{view}": image},
            "target": 1.0,
            "attack": "pgd",
            "eps": 0.02,
            "saliency": "gradient",
            "tags": [],
            "record": record,
            "thresholds": {"M": {"prob": 0.5, "rule": "logit"}},
        },
        lesion,
        breast,
    )


def open_result(qtbot, result):
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1200, 700)
    pane.show()
    for box in (pane.model_a, pane.model_b):
        box.blockSignals(True)
        box.addItem("M")
        box.blockSignals(False)
    pane.overlay_box.setCurrentText("saliency")
    pane._on_case(result)
    qtbot.wait(50)
    return pane


def shown_peak(view):
    """The overlay's peak as drawn, in native (row, col): display grid -> view (mm) -> native pixel."""
    heat = view.overlay.image
    i, j = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return view.native_pixel_at(view.overlay.mapToView(QPointF(j + 0.5, i + 0.5)))


@pytest.mark.parametrize("laterality,view", [("L", "CC"), ("R", "CC"), ("L", "MLO"), ("R", "MLO")])
def test_overlay_peak_lands_on_the_lesion(qtbot, tmp_path, laterality, view):
    result, lesion, _ = phantom_case(tmp_path, laterality, view)
    pane = open_result(qtbot, result)
    cols = result["case"]["pixels"].shape[1]
    tolerance = 0.02 * cols
    for name, v in (("pair", pane.view_a), ("hanging", pane.hanging[f"{laterality}{view}"])):
        assert v.gray.shape == result["case"]["pixels"].shape, name  # the DICOM as acquired
        row, col = shown_peak(v)
        assert abs(row - lesion[0]) <= tolerance and abs(col - lesion[1]) <= tolerance, (name, (row, col), lesion)
        full = v.native_overlay()  # what the export uses
        assert full.shape == v.gray.shape
        row, col = np.unravel_index(int(np.argmax(full)), full.shape)
        assert abs(row - lesion[0]) <= tolerance and abs(col - lesion[1]) <= tolerance
    marker = pane.view_a.marker
    assert marker.text() == f"{laterality} {view}"
    assert pane.view_a.marker_side == ("left" if laterality == "R" else "right")  # away from the chest wall
    # δ on its own diverging scale, ±ε, named in the control and on the colour bar
    pane.overlay_box.setCurrentText("perturbation δ")
    assert pane.cmap_box.currentText().startswith("CET-D") and pane.view_a.heat_levels == (-0.02, 0.02)
    assert "ε = 0.02" in pane.view_a.heat_label
    # "as the model sees it": the model input, chest wall left, the map at its own size
    pane.space_box.setCurrentIndex(1)
    assert pane.view_a.gray.shape == (32, 32) and pane.view_a.heat.shape == (32, 32)


def settle(qtbot, view, tries=40):
    """Wait until the view box's size and range stop changing: the graphics layout gives the
    colour bar its column on a later event (pyqtgraph 0.14 / PySide6 6.11), so a screen position
    computed right after showing the case points at another pixel once the layout settles."""
    state = None
    for _ in range(tries):
        now = (view.view.geometry(), view.view.viewRange())
        if now == state:
            return
        state = now
        qtbot.wait(50)
    raise AssertionError(f"the view did not settle: {state}")


def test_readout_in_mm_and_aspect(qtbot, tmp_path):
    result, _, _ = phantom_case(tmp_path, "L", "CC", spacing=(0.1, 0.07))
    pane = open_result(qtbot, result)
    view = pane.view_a
    rect = view.shown_rect()
    assert rect.height() / rect.width() == pytest.approx(300 * 0.1 / (220 * 0.07), rel=0.02)  # aspect from spacing
    settle(qtbot, view)  # map the pixel to the screen only once the view has its final size
    range_before = view.view.viewRange()
    point = QPointF((50 + 0.5) * 0.07, (100 + 0.5) * 0.1)
    scene = view.view.mapViewToScene(point)
    screen = view.graphics.mapFromScene(scene)  # whole screen pixels: the cursor lands near, not on, the point
    under = view.view.mapSceneToView(view.graphics.mapToScene(screen))
    row, col = int(under.y() // 0.1), int(under.x() // 0.07)
    assert abs(row - 100) <= 1 and abs(col - 50) <= 1
    qtbot.mouseMove(view.graphics.viewport(), screen)
    qtbot.waitUntil(lambda: f"row {row}" in view.readout.text(), timeout=3000)
    qtbot.wait(50)
    assert view.view.viewRange() == range_before  # the readout's text does not re-lay out (and move) the image
    text = view.readout.text()
    x, y = (float(v) for v in re.search(r"x\s+([\d.]+) mm\s+y\s+([\d.]+) mm", text).groups())
    assert x == pytest.approx(under.x(), abs=0.06) and y == pytest.approx(under.y(), abs=0.06)
    assert f"col {col}" in text and f"value {float(view.scale.to_modality(view.gray[row, col])):.6g}" in text  # the stored value


def _mouse(widget, kind, pos, button, buttons):
    pos = QPointF(pos)
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def drag(widget, start, end, button=Qt.MouseButton.RightButton):
    none = Qt.MouseButton.NoButton
    _mouse(widget, QEvent.Type.MouseButtonPress, start, button, button)
    for t in np.linspace(0, 1, 6)[1:]:
        _mouse(widget, QEvent.Type.MouseMove, start + (end - start) * float(t), none, button)
    _mouse(widget, QEvent.Type.MouseButtonRelease, end, button, none)


def test_window_level_drag_presets_link_and_new_case(qtbot, tmp_path):
    result, _, _ = phantom_case(tmp_path, "R", "CC")
    pane = open_result(qtbot, result)
    a, b = pane.view_a, pane.view_b
    viewport = a.graphics.viewport()
    centre = QPointF(viewport.width() / 3, viewport.height() / 2)
    assert a.levels == (0.0, 1.0)  # the header window
    assert a.wl_label.text() == "W 4096  L 2048"  # the header's first window, in stored (modality) values
    range_before = a.view.viewRange()
    drag(viewport, centre, centre + QPointF(100, 50))
    width, level = a.levels[1] - a.levels[0], sum(a.levels) / 2
    assert width > 1.05 and level > 0.52  # right: wider; down: higher level
    assert np.allclose(a.view.viewRange(), range_before)  # the W/L button does not pan
    assert a.wl_label.text() == window_text(a.levels, a.scale) and a.scale is not None
    assert b.levels == a.levels  # linked
    pane.link_wl_box.setChecked(False)
    qtbot.wait(QApplication.doubleClickInterval() + 100)  # a second press this soon is a double-click (reset)
    drag(viewport, centre, centre + QPointF(-150, 0))
    assert b.levels != a.levels
    # presets: every window of the header by its explanation (LINEAR: C 1500 W 1000 spans 1000..1999), and the full range
    names = [pane.preset_box.itemText(i) for i in range(pane.preset_box.count())]
    assert names[:2] == ["FULL: C 2048 W 4096", "TISSUE: C 1500 W 1000"] and "Full range" in names
    window_controls.apply_preset(pane, "TISSUE: C 1500 W 1000")
    assert a.levels == pytest.approx((1000 / 4095, 1999 / 4095)) and a.wl_label.text() == "W 1000  L 1500"
    window_controls.apply_preset(pane, "Full range")
    assert a.levels == pytest.approx((float(a.gray.min()), float(a.gray.max())))
    # double-click: back to the header window, whole image in view
    a.view.setRange(xRange=(1, 3), yRange=(1, 3), padding=0)
    a.reset_view()
    assert a.levels == (0.0, 1.0) and a.view.viewRange()[0][1] - a.view.viewRange()[0][0] > 10
    # a new case starts from its own header window, not the last case's W/L
    qtbot.wait(QApplication.doubleClickInterval() + 100)  # else this press and the last one are a double-click
    drag(viewport, centre, centre + QPointF(80, 80))
    assert a.levels != (0.0, 1.0)
    (tmp_path / "next").mkdir()
    pane._on_case(phantom_case(tmp_path / "next", "L", "MLO")[0])
    assert a.levels == (0.0, 1.0) and b.levels == (0.0, 1.0)


@pytest.mark.parametrize("suffix", [".png", ".pdf"])
def test_export_full_resolution_under_the_typed_name(qtbot, tmp_path, suffix):
    result, _, _ = phantom_case(tmp_path, "L", "MLO")
    pane = open_result(qtbot, result)
    target = tmp_path / f"my case, saliency{suffix}"
    handle = pane.export_overlay(str(target))
    wait_task(qtbot, handle)
    assert handle.outcome == "done", handle.error
    assert [p.name for p in tmp_path.glob("my case*")] == [target.name]
    if suffix == ".png":
        from matplotlib import image as mpimg

        picture = mpimg.imread(target)
        rows, cols = result["case"]["pixels"].shape
        assert picture.shape[0] > rows and picture.shape[1] > 2 * cols  # both panels at full size, bar, caption
    else:
        assert target.read_bytes()[:4] == b"%PDF"


def test_display_pyramid_keeps_a_microcalcification():
    from arfl_studio.data.preprocess.pyramid import Pyramid

    image = np.zeros((2048, 1600), np.float32)
    image[1001, 803] = 1.0  # one bright pixel, off the stride-4 grid
    pyramid = Pyramid(image)
    level = pyramid.levels[2]  # 4x4 block means
    assert level.shape == (512, 400) and pyramid.covered(2) == (2048, 1600)
    assert level[1001 // 4, 803 // 4] == pytest.approx(1 / 16)  # its mass is kept, in the right block
    assert level.sum() == pytest.approx(image.sum() / 16)
    assert image[::4, ::4].max() == 0  # striding would have dropped it
    assert pyramid.level_for(0.5) == 0 and pyramid.level_for(4.5) == 2 and pyramid.level_for(1e6) == 2


def test_tag_panel_hides_phi_by_the_one_list(tmp_path):
    path, _, _ = write_phantom(tmp_path / "p.dcm", "L", "CC")
    rows = {r["keyword"]: r for r in case_analysis.dicom_tags(path)}
    assert rows["PatientName"]["phi"]  # PS3.15 basic profile (data.deid.is_phi)
    assert not rows["PatientID"]["phi"] and not rows["Modality"]["phi"] and not rows["PixelSpacing"]["phi"]


def test_overlay_export_lays_out_like_the_screen_with_the_whole_caption(qtbot, tmp_path):
    """Four views export as the 2 x 2 hanging (not 1 x 4); a long caption wraps inside the figure."""
    from matplotlib import image as mpimg

    from arfl_studio.evaluation.saliency import overlay_layout

    views = {}
    for lat, view in (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO")):
        (tmp_path / f"{lat}{view}").mkdir()
        case, _, _ = phantom_case(tmp_path / f"{lat}{view}", lat, view)
        views[f"{lat}{view}"] = case["case"]
    result = dict(case, views=views)
    pane = open_result(qtbot, result)
    pane.mode_box.setCurrentIndex(1)
    target = tmp_path / "hanging.png"
    handle = pane.export_overlay(str(target))
    wait_task(qtbot, handle)
    assert handle.outcome == "done", handle.error
    rows, cols = case["case"]["pixels"].shape
    picture = mpimg.imread(target)
    assert picture.shape[0] > 2 * rows and 2 * cols < picture.shape[1] < 3 * cols  # two rows of two
    caption = " ".join(f"word{i}" for i in range(120))
    fig = overlay_layout([("a", np.zeros((rows, cols, 3), np.uint8))], caption=caption)
    fig.canvas.draw()
    text = next(t for t in fig.texts if "word0" in t.get_text())
    assert text.get_text().replace("\n", " ") == caption  # every word kept
    box = text.get_window_extent()
    assert box.x1 <= fig.bbox.x1 and box.y0 >= 0 and box.y1 <= fig.bbox.y1


def test_overlay_low_end_is_transparent_so_the_anatomy_stays_readable(qtbot, tmp_path):
    """Alpha-ramp colour map with a default threshold: a cold region leaves the pixels as they are,
    a hot one is coloured; δ's map is transparent around δ = 0; the threshold is the pane's."""
    from arfl_studio.gui.widgets.image_view import DEFAULT_THRESHOLD, MammogramView, overlay_lut

    lut = overlay_lut("inferno")
    assert lut[0, 3] == 0 and lut[int(255 * DEFAULT_THRESHOLD), 3] == 0 and lut[-1, 3] == 1
    signed = overlay_lut("CET-D1")
    assert signed[128, 3] == 0 and signed[0, 3] == 1 and signed[-1, 3] == 1
    view = MammogramView("x")
    qtbot.addWidget(view)
    gray = np.full((8, 8), 0.8, np.float32)
    heat = np.zeros((8, 8), np.float32)
    heat[:, 4:] = 1.0  # cold left half, hot right half
    view.set_image(gray)
    view.set_overlay(heat, "inferno", (0.0, 1.0))
    view.set_opacity(0.6)
    shown = view.blended()
    assert (shown[:, :4] == round(0.8 * 255)).all()  # the anatomy under the cold half, unchanged
    assert not (shown[:, 4:] == round(0.8 * 255)).all()
    assert view.overlay.lut[0, 3] == 0  # the screen's LUT is the same ramp
    result, _, _ = phantom_case(tmp_path, "L", "CC")
    pane = open_result(qtbot, result)
    pane.threshold_spin.setValue(50)
    assert pane.view_a.heat_threshold == 0.5 and pane.view_a.overlay.lut[int(255 * 0.45), 3] == 0
