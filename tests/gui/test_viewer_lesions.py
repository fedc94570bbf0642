"""Lesion marks in the viewer: drawn in native space under the overlay, coloured by pathology,
following the view (mm), toggled, in the four-view hanging; the case's localisation shown."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from arfl_studio.data.datasets.lesions import Lesion
from arfl_studio.evaluation import case_analysis
from arfl_studio.gui.widgets.lesion_layer import PATHOLOGY_COLOURS

from .test_viewer_native import open_result, phantom_case


def case_with_lesions(tmp_path, lesions_at):
    result, lesion, _ = phantom_case(tmp_path, "R", "CC", spacing=(0.1, 0.2))
    r, c = lesion
    lesions = lesions_at(r, c)
    record = result["record"]
    record.lesions, record.rel_path = lesions, record.path.name
    case_analysis.add_lesions(result["case"], record)
    return result, (r, c)


def test_lesions_drawn_in_mm_under_the_overlay_and_toggled(qtbot, tmp_path):
    result, (r, c) = case_with_lesions(
        tmp_path,
        lambda r, c: (
            Lesion("mass", centre=(r, c), radius=6.0, pathology="malignant"),
            Lesion("mass", box=(10, 20, 30, 50), pathology="benign"),
            Lesion("calcification", centre=(5.0, 5.0)),
        ),
    )
    pane = open_result(qtbot, result)
    for view in (pane.view_a, pane.hanging["RCC"]):
        items = view.lesions.drawn()
        assert len(items) == 3  # circle outline, box outline, one scatter of points
        circle = items[0].path().boundingRect()
        sy, sx = view.pixel_size()
        assert (sy, sx) == (0.1, 0.2)
        assert abs(circle.center().x() - (c + 0.5) * sx) < 0.3 and abs(circle.center().y() - (r + 0.5) * sy) < 0.3
        assert items[0].pen().color().name() == PATHOLOGY_COLOURS["malignant"]
        assert items[1].pen().color().name() == PATHOLOGY_COLOURS["benign"]
        assert all(view.tiles[0].zValue() < i.zValue() < view.overlay.zValue() for i in items)
        assert view.overlay_visible()
    pane.lesion_box.setChecked(False)
    assert not pane.view_a.lesions.drawn() and not pane.hanging["RCC"].lesions.drawn()
    pane.lesion_box.setChecked(True)
    assert len(pane.view_a.lesions.drawn()) == 3


def test_model_space_shows_the_lesions_moved_with_the_preprocessing(qtbot, tmp_path):
    result, _ = case_with_lesions(tmp_path, lambda r, c: (Lesion("mass", centre=(r, c), radius=6.0),))
    pane = open_result(qtbot, result)
    pane.space_box.setCurrentIndex(1)
    (item,) = pane.view_a.lesions.drawn()
    centre = item.path().boundingRect().center()
    peak = np.unravel_index(int(np.argmax(result["case"]["model_input"])), result["case"]["model_input"].shape)
    assert abs(centre.y() - (peak[0] + 0.5)) < 2 and abs(centre.x() - (peak[1] + 0.5)) < 2


def test_case_localisation_in_the_prediction_panel_and_captions(qtbot, tmp_path):
    result, _ = case_with_lesions(tmp_path, lambda r, c: (Lesion("mass", centre=(r, c), radius=6.0),))
    pane = open_result(qtbot, result)
    text = pane.prediction.text()
    assert "Where the saliency map looks" in text and "hit" in text and "Chance" in text
    loc = result["case"]["localisation"]["M"]["clean"]
    assert f"{100 * loc['energy_inside']:.0f} %" in text
    assert "in lesions (chance" in pane.hanging["RCC"].caption.text()


def test_a_case_without_lesions_draws_none_and_says_nothing(qtbot, tmp_path):
    result, _ = case_with_lesions(tmp_path, lambda r, c: ())
    pane = open_result(qtbot, result)
    assert not pane.view_a.lesions.drawn()
    assert "Where the saliency map looks" not in pane.prediction.text()
    pane.clear("gone")
    assert not pane.view_a.lesions.items


def test_record_from_the_dataset_pane_carries_its_lesions(tmp_path):
    result, (r, c) = case_with_lesions(tmp_path, lambda r, c: ())
    record = SimpleNamespace(
        path=result["record"].path,
        rel_path=result["record"].path.name,
        patient_id="PH-0001",
        laterality="R",
        view="CC",
        label=1,
        lesions=(Lesion("mass", centre=(r, c), radius=4.0),),
    )
    views = case_analysis.four_views([record], "PH-0001")
    assert views["RCC"]["lesions"]["native"][0]["kind"] == "outline"


def test_lesion_toggle_is_enabled_only_when_there_are_marks(qtbot, tmp_path):
    for sub in "ab":
        (tmp_path / sub).mkdir()
    pane = open_result(qtbot, case_with_lesions(tmp_path / "a", lambda r, c: ())[0])
    assert not pane.lesion_box.isEnabled()
    pane._on_case(case_with_lesions(tmp_path / "b", lambda r, c: (Lesion("mass", centre=(r, c), radius=5.0),))[0])
    assert pane.lesion_box.isEnabled()


def test_views_left_empty_keep_no_label_of_the_earlier_case(qtbot, tmp_path):
    """After a two-model case, a dataset image (no model) leaves the right view empty: no title,
    caption, marker, W/L numbers, lesion marks or colour bar of the case before."""
    result, _ = case_with_lesions(tmp_path, lambda r, c: (Lesion("mass", centre=(r, c), radius=5.0),))
    pane = open_result(qtbot, result)
    assert pane.view_b.title.text() and pane.view_b.caption.text()
    pane.analysis = None  # as show_record does before its task: a dataset image, no model
    pane._on_views(
        {
            "views": {},
            "tags": [],
            "record": SimpleNamespace(patient_id="P2", laterality="L", view="XCCL", label=0, path=tmp_path / "other.dcm"),
        }
    )
    for view in (pane.view_a, pane.view_b):
        assert view.gray is None
        assert (view.title.text(), view.caption.text(), view.marker.text(), view.wl_label.text()) == ("", "", "", "")
        assert not view.lesions.items and not view.colour_bar.isVisible()


def test_an_undecodable_view_shows_its_reason_and_the_others_stay(qtbot, tmp_path):
    from lesion_phantom import write_phantom

    records = []
    for lat, view in (("R", "CC"), ("L", "CC"), ("R", "MLO")):
        path, _, _ = write_phantom(tmp_path / f"{lat}{view}.dcm", lat, view)
        if view == "MLO":
            path.write_bytes(path.read_bytes()[:400])  # cut short: no pixel data left
        records.append(SimpleNamespace(path=path, rel_path=path.name, patient_id="PH-0001", laterality=lat, view=view, label=1, lesions=()))
    views = case_analysis.four_views(records, "PH-0001")
    assert "error" in views["RMLO"] and "pixels" in views["RCC"] and "pixels" in views["LCC"]
    from arfl_studio.gui.panes.viewer_pane import ViewerPane

    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane._on_views({"views": views, "tags": [], "record": records[0]})
    assert pane.hanging["RCC"].gray is not None and pane.hanging["LCC"].gray is not None
    assert pane.hanging["RMLO"].gray is None
    assert pane.hanging["RMLO"].caption.text().startswith("Could not show this view: ")
    assert pane.hanging["LMLO"].caption.text() == "(no image)"
