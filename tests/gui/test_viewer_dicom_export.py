"""The Viewer's overlay as DICOM (issue 25 item 16): a .dcm name writes a Secondary Capture per image
on screen, beside its source, with the picture the view shows and no PHI."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from arfl_studio.data.dicom.secondary_capture import profile_violations

from .conftest import wait_task
from .test_viewer_native import open_result, phantom_case


def test_dicom_export_of_the_two_models_writes_one_secondary_capture_each(qtbot, tmp_path):
    result, _, _ = phantom_case(tmp_path, "L", "CC")
    pane = open_result(qtbot, result)
    pane.request = {"run_dir": str(tmp_path), "method": "M", "fold": 1, "record": result["record"]}
    handle = pane.export_overlay(str(tmp_path / "overlay.dcm"))
    wait_task(qtbot, handle)
    assert handle.outcome == "done", handle.error
    paths = sorted(tmp_path.glob("overlay*.dcm"))
    assert [p.name for p in paths] == ["overlay-M-2.dcm", "overlay-M.dcm"]  # both views show model M
    source = pydicom.dcmread(result["case"]["path"])
    first = pydicom.dcmread(tmp_path / "overlay-M.dcm")
    assert first.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert first.StudyInstanceUID == source.StudyInstanceUID
    assert (first.Rows, first.Columns) == (source.Rows, source.Columns) and list(first.PixelSpacing) == list(source.PixelSpacing)
    assert first.SeriesDescription.endswith("method M · fold 2 · ε 0.02") and "saliency gradient" in first.SeriesDescription
    assert profile_violations(first) == [] and "PatientName" in first and first.PatientName == ""
    assert np.array_equal(first.pixel_array, pane.view_a.blended())  # the picture the view shows
    # the two images of one model: one series, two instances
    second = pydicom.dcmread(tmp_path / "overlay-M-2.dcm")
    assert second.SeriesInstanceUID == first.SeriesInstanceUID and {first.InstanceNumber, second.InstanceNumber} == {1, 2}
    # a second export to the same name never replaces the files made from it
    before = (tmp_path / "overlay-M.dcm").read_bytes()
    with pytest.raises(ValueError, match="overlay-M.dcm, overlay-M-2.dcm already exist"):
        pane.export_overlay(str(tmp_path / "overlay.dcm"))
    assert (tmp_path / "overlay-M.dcm").read_bytes() == before


def test_dicom_export_needs_the_native_grid(qtbot, tmp_path):
    result, _, _ = phantom_case(tmp_path, "R", "MLO")
    pane = open_result(qtbot, result)
    pane.request = {"fold": 0}
    pane.space_box.setCurrentIndex(1)  # as the model sees it
    with pytest.raises(ValueError, match="Native"):
        pane.export_overlay(str(tmp_path / "x.dcm"))
    assert not list(tmp_path.glob("x*.dcm"))
