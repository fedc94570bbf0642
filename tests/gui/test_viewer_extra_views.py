"""Views outside the four-view hanging are reachable (issue 25 item 11): a strip beside the hanging
lists every view of the patient (XCCL, ML, spot compression, magnification, a second CC); clicking
one opens it alone; the hanging keeps the plain CC/MLO views."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from PySide6.QtCore import Qt
from synthetic_dicom import write_mammogram

from arfl_studio.evaluation.hanging import hanging_order, view_names
from arfl_studio.gui.panes.viewer_pane import ViewerPane

from .conftest import wait_task


def _modifier(code: str, scheme: str = "SCT") -> list:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator = code, scheme
    return [item]


VIEWS = [  # file, laterality, view, extra attributes
    ("a_rcc", "R", "CC", {}),
    ("b_lcc", "L", "CC", {}),
    ("c_rmlo", "R", "MLO", {}),
    ("d_lmlo", "L", "MLO", {}),
    ("e_lxccl", "L", "XCCL", {}),
    ("f_rml", "R", "ML", {}),
    ("g_lcc_spot", "L", "CC", {"ViewModifierCodeSequence": _modifier("R-102D7", "SRT")}),  # spot compression
    ("h_rcc_mag", "R", "CC", {"ViewModifierCodeSequence": _modifier("399163009")}),  # magnification
    ("i_lcc_again", "L", "CC", {}),
]


def write_broken_view(path):
    """An RLM whose header reads but whose JPEG 2000 frame is no codestream: it cannot be decoded."""
    import pydicom
    from pydicom.encaps import encapsulate

    write_mammogram(path, np.zeros((40, 40), np.uint16), ImageLaterality="R", ViewPosition="LM")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"
    ds.PixelData = encapsulate([b"\0" * 64])
    ds["PixelData"].VR = "OB"
    ds.save_as(path)
    return path


def write_patient(folder):
    folder.mkdir()
    return {
        name: write_mammogram(
            folder / f"{name}.dcm",
            np.full((40 + i, 40), 100 * i, np.uint16),  # each file its own height: which one is shown
            ImageLaterality=lat,
            ViewPosition=view,
            **extra,
        )
        for i, (name, lat, view, extra) in enumerate(VIEWS)
    }


def test_every_view_has_a_name_and_the_hanging_keeps_the_plain_views(tmp_path):
    from types import SimpleNamespace

    paths = write_patient(tmp_path / "p")
    records = [SimpleNamespace(patient_id="SYN-0001", laterality=lat, view=view, path=paths[n]) for n, lat, view, _ in VIEWS]
    names = view_names(records, "SYN-0001")
    assert names["LCC"].path == paths["b_lcc"] and names["RCC"].path == paths["a_rcc"]
    assert names["LCC SPOT"].path == paths["g_lcc_spot"] and names["RCC MAG"].path == paths["h_rcc_mag"]
    assert names["LCC 2"].path == paths["i_lcc_again"]
    assert hanging_order(names) == ["RCC", "LCC", "RMLO", "LMLO", "LCC 2", "LCC SPOT", "LXCCL", "RCC MAG", "RML"]


def test_the_strip_opens_a_view_outside_the_hanging(qtbot, tmp_path):
    paths = write_patient(tmp_path / "p")
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1100, 700)
    pane.show()
    wait_task(qtbot, pane.open_files([str(paths["a_rcc"])]))
    assert pane.stack.currentIndex() == 1
    assert pane.hanging["LCC"].gray.shape == (41, 40)  # the plain CC hangs, not the spot or the second one
    items = [pane.view_strip.item(i) for i in range(pane.view_strip.count())]
    assert [i.text() for i in items] == ["RCC", "LCC", "RMLO", "LMLO", "LCC 2", "LCC SPOT", "LXCCL", "RCC MAG", "RML"]
    assert all(not i.icon().isNull() for i in items)  # thumbnails
    spot = items[5]
    pane.view_strip.itemClicked.emit(spot)
    assert pane.stack.currentIndex() == 0 and pane.view_a.gray.shape == (46, 40)
    assert pane.view_a.title.text() == "LCC SPOT as acquired"
    assert spot.data(Qt.ItemDataRole.UserRole) == pane.shown_view == "LCC SPOT"
    # back to the hanging: the layout box
    pane.mode_box.setCurrentIndex(1)
    assert pane.hanging["RCC"].gray.shape == (40, 40)


def test_an_unreadable_extra_view_says_why_and_the_others_stay(qtbot, tmp_path):
    paths = write_patient(tmp_path / "p")
    write_broken_view(tmp_path / "p" / "j_rlm.dcm")
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.show()
    wait_task(qtbot, pane.open_files([str(paths["a_rcc"])]))
    items = {pane.view_strip.item(i).text(): pane.view_strip.item(i) for i in range(pane.view_strip.count())}
    assert "could not be read" in items["RLM"].toolTip() and all(pane.hanging[n].gray is not None for n in ("RCC", "LCC"))
    pane.view_strip.itemClicked.emit(items["RLM"])
    assert pane.view_a.gray is None and pane.view_a.caption.text().startswith("Could not show this view: ")
