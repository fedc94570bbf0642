"""An overlay exported as a DICOM Secondary Capture (issue 25 item 16): read back with pydicom and highdicom,
it refers to its source image in the source's study, has the source's pixel geometry, carries
no attribute the PS3.15 basic profile removes, and names method, fold and ε."""

from __future__ import annotations

import highdicom
import numpy as np
import pydicom
import pytest
from synthetic_dicom import write_mammogram

from arfl_studio.data.dicom.deid import PROFILE_ATTRIBUTES, is_phi
from arfl_studio.data.dicom.secondary_capture import (
    RETAINED,
    profile_violations,
    secondary_capture,
    series_description,
    write_secondary_capture,
)


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(0)
    return write_mammogram(tmp_path / "source.dcm", rng.integers(0, 4096, (70, 50)).astype(np.uint16))


def test_secondary_capture_refers_to_its_source_and_carries_no_phi(tmp_path, source):
    rgb = np.random.default_rng(1).integers(0, 256, (70, 50, 3)).astype(np.uint8)
    description = series_description("saliency gradient", "B", 2, 0.01)
    out = write_secondary_capture(tmp_path / "overlay.dcm", secondary_capture(source, rgb, description))
    src, sc = pydicom.dcmread(source), pydicom.dcmread(out)
    # the reference, in the source's study, with new UIDs of its own
    assert sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert sc.StudyInstanceUID == src.StudyInstanceUID and sc.PatientID == src.PatientID
    assert sc.SeriesInstanceUID != src.SeriesInstanceUID and sc.SOPInstanceUID != src.SOPInstanceUID
    assert sc.file_meta.MediaStorageSOPInstanceUID == sc.SOPInstanceUID
    for sequence in (sc.ReferencedImageSequence, sc.SourceImageSequence):
        assert [(i.ReferencedSOPClassUID, i.ReferencedSOPInstanceUID) for i in sequence] == [(src.SOPClassUID, src.SOPInstanceUID)]
    # and as a DICOM toolkit resolves it: the source's study, series and instance, the picture as given
    image = highdicom.imread(out)
    assert image.get_source_image_uids() == [(src.StudyInstanceUID, src.SeriesInstanceUID, src.SOPInstanceUID)]
    assert np.array_equal(image.get_frame(1), rgb)
    # the source's pixel geometry, the picture as given
    assert (sc.Rows, sc.Columns) == (src.Rows, src.Columns)
    assert [float(v) for v in sc.PixelSpacing] == [float(v) for v in src.PixelSpacing]
    assert sc.PhotometricInterpretation == "RGB" and np.array_equal(sc.pixel_array, rgb)
    assert sc.ImageLaterality == "L" and list(sc.PatientOrientation) == ["P", "R"]
    # method, fold and ε in the series description
    assert sc.SeriesDescription == description and all(t in description for t in ("method B", "fold 2", "ε 0.01"))
    # no PHI: nothing the profile removes, the emptied attributes empty, no private tag, no source text
    assert profile_violations(sc) == []
    for elem in sc.iterall():
        if elem.keyword in RETAINED or elem.keyword == "PatientID":
            continue
        if elem.tag in PROFILE_ATTRIBUTES or is_phi(elem.tag, elem.VR):
            assert elem.value in ("", None), elem.keyword
        assert not elem.tag.is_private
    text = str(sc)
    for secret in ("Doe", "General Hospital", "ACC123", "20200202", "19600101", "private secret", "Who"):
        assert secret not in text


def test_what_does_not_fit_is_refused(tmp_path, source):
    with pytest.raises(ValueError, match="50x70"):  # another size than the source's
        secondary_capture(source, np.zeros((50, 70, 3), np.uint8), "x")
    with pytest.raises(ValueError, match="uint8 RGB"):
        secondary_capture(source, np.zeros((70, 50), np.float32), "x")
    assert not list(tmp_path.glob("*overlay*"))


def test_a_source_without_a_study_gets_the_same_made_up_study_each_time(tmp_path):
    path = write_mammogram(tmp_path / "bare.dcm", np.zeros((20, 20), np.uint16))
    ds = pydicom.dcmread(path)
    del ds.StudyInstanceUID
    ds.save_as(path)
    uids = {secondary_capture(path, np.zeros((20, 20, 3), np.uint8), "x").StudyInstanceUID for _ in range(2)}
    assert len(uids) == 1 and uids != {ds.SOPInstanceUID}


def test_violations_are_found_at_any_depth(source):
    ds = secondary_capture(source, np.zeros((70, 50, 3), np.uint8), "x")
    ds.ReferencedImageSequence[0].PatientName = "Doe^Jane"
    ds.InstitutionName = "General Hospital"
    assert sorted(profile_violations(ds)) == ["InstitutionName", "PatientName"]


def test_series_description_fits_a_long_string_and_keeps_method_fold_and_eps():
    text = series_description("saliency integrated-gradients on the adversarial input, min-max scaled", "F", 10, 0.0039)
    assert len(text) <= 64 and text.endswith("method F · fold 10 · ε 0.0039")
