"""The Dataset pane's label rule: CMMD's missing-row policy and the VinDr/INbreast BI-RADS mapping
are shown for the layouts that use them, and changing one derives the labels again."""

from __future__ import annotations

import csv
import zlib

import numpy as np

from arfl_studio.data.demo.dataset import build_dicom
from arfl_studio.gui.panes.dataset_pane import DatasetPane

from .conftest import wait_task


def _dicom(path, laterality, patient_id=""):
    yy, xx = np.mgrid[0:48, 0:40]
    tissue = np.where((xx / 30.0) ** 2 + ((yy - 24) / 20.0) ** 2 < 1, 0.6, 0.0).astype(np.float32)
    ds = build_dicom(
        tissue,
        patient_id=patient_id,
        age=50,
        laterality=laterality,
        view="CC",
        study_uid="1.2.3",
        series_uid="1.2.3.1",
        sop_uid=f"1.2.3.1.{zlib.crc32(str(path).encode())}",
        instance=1,
        photometric="MONOCHROME2",
        voi_function="LINEAR",
        transfer_syntax="1.2.840.10008.1.2.1",
        flip=False,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _vindr(root):
    rows = [
        ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads", "breast_density", "split"]
    ]
    for study, image, side, birads in (("s1", "a", "L", "BI-RADS 4"), ("s1", "b", "R", "BI-RADS 1"), ("s2", "c", "L", "BI-RADS 3")):
        _dicom(root / "images" / study / f"{image}.dicom", side)
        rows.append([study, "x", image, side, "CC", "48", "40", birads, "DENSITY B", "training"])
    _csv(root / "breast-level_annotations.csv", rows)
    return root


def _pane(qtbot, tmp_path):
    pane = DatasetPane(thumbnail_cache=tmp_path / "thumbs")
    qtbot.addWidget(pane)
    return pane


def _idle(qtbot, pane):
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)  # thumbnails too


def _scanned(qtbot, pane, start):
    with qtbot.waitSignal(pane.scanned, timeout=60_000) as blocker:
        start()  # load(), or a signal the pane rescans on
    wait_task(qtbot, pane.task)
    return blocker.args[0]


def test_the_birads_mapping_is_shown_for_vindr_and_a_change_relabels(qtbot, tmp_path):
    pane = _pane(qtbot, tmp_path)
    scan = _scanned(qtbot, pane, lambda: pane.load(_vindr(tmp_path / "vindr")))
    box = pane.label_policy
    assert scan.layout == "vindr" and box.isVisibleTo(pane)
    form = box.layout()
    assert form.isRowVisible(box.birads_positive) and not form.isRowVisible(box.cmmd_missing)
    assert {r.rel_path for r in scan.images} == {"images/s1/a.dicom", "images/s1/b.dicom"}  # BI-RADS 3 excluded
    assert "breast_birads: BI-RADS 4" in pane.summary_value("Labels")

    box.birads_positive.setText("3,4,4a,4b,4c,5,6")
    rescanned = _scanned(qtbot, pane, lambda: box.birads_positive.editingFinished.emit())
    assert {r.rel_path: r.label for r in rescanned.images}["images/s2/c.dicom"] == 1
    assert rescanned.options["birads_positive"] == "3,4,4a,4b,4c,5,6" and "BI-RADS 3, 4" in rescanned.label_rule
    assert "BI-RADS 3, 4" in pane.summary_value("Labels")
    assert "3 headers from the scan cache, 0 read" in pane.summary_value("Scan")  # only the labels were derived again
    assert box.options_for("vindr") == {"birads_positive": "3,4,4a,4b,4c,5,6", "birads_negative": "1,2"}
    _idle(qtbot, pane)


def test_a_birads_list_that_is_not_one_is_shown_and_not_applied(qtbot, tmp_path):
    pane = _pane(qtbot, tmp_path)
    _scanned(qtbot, pane, lambda: pane.load(_vindr(tmp_path / "vindr")))
    box = pane.label_policy
    with qtbot.assertNotEmitted(box.changed):
        box.birads_negative.setText("1,benign")
        box.birads_negative.editingFinished.emit()
        assert "Not BI-RADS categories" in box.problem.text()
        box.birads_negative.setText("1,2")
        box.birads_positive.setText("1,4")  # 1 is negative too
        box.birads_positive.editingFinished.emit()
    assert "cannot be both" in box.problem.text() and box.options()["birads_positive"] == "4,4a,4b,4c,5,6"
    _idle(qtbot, pane)


def test_the_cmmd_missing_row_policy_is_shown_for_cmmd_and_a_change_relabels(qtbot, tmp_path):
    _dicom(tmp_path / "CMMD" / "D1-0001" / "a.dcm", "L", "D1-0001")
    _dicom(tmp_path / "CMMD" / "D1-0001" / "b.dcm", "R", "D1-0001")
    _csv(
        tmp_path / "CMMD_clinicaldata_revision.csv",
        [
            ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"],
            ["D1-0001", "L", "44", "1", "mass", "Malignant", ""],
        ],
    )
    pane = _pane(qtbot, tmp_path)
    scan = _scanned(qtbot, pane, lambda: pane.load(tmp_path))
    box = pane.label_policy
    assert scan.layout == "cmmd" and box.isVisibleTo(pane)
    assert box.layout().isRowVisible(box.cmmd_missing) and not box.layout().isRowVisible(box.birads_positive)
    assert len(scan.images) == 1 and scan.unlabeled == ["CMMD/D1-0001/b.dcm"]
    box.cmmd_missing.setCurrentText("negative")
    rescanned = _scanned(qtbot, pane, lambda: box.cmmd_missing.activated.emit(1))
    assert {r.rel_path: r.label for r in rescanned.images} == {"CMMD/D1-0001/a.dcm": 1, "CMMD/D1-0001/b.dcm": 0}
    assert box.options_for("cmmd") == {"cmmd_missing": "negative"}
    _idle(qtbot, pane)
