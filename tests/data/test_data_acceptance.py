"""What the header check accepts and refuses, with which reason and category (issue 10/11 phantoms)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from helpers_data import cancel_at, write_dicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from arfl_studio.data import MammogramReadError, read_header, read_mammogram, scan_dataset
from arfl_studio.data.datasets.reasons import MIN_SIDE


def _reject(path, category, match, **options):
    with pytest.raises(MammogramReadError, match=match) as info:
        read_header(path, **options)
    assert info.value.category == category
    return info.value


@pytest.mark.parametrize("modality", ["CT", "MR", "US", "NM", "RTIMAGE"])
def test_other_modalities_are_not_mammograms_unless_included(tmp_path, modality):
    def other(ds):
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage (the class matters little)
        ds.Modality = modality
        ds.BodyPartExamined = "CHEST"
        del ds.ViewCodeSequence

    path = write_dicom(tmp_path / "x.dcm", edit=other)
    _reject(path, "not_mammogram", rf"not a mammogram \(Modality {modality}, body part CHEST\)")
    assert read_header(path, include_non_mammograms=True).modality == modality


def test_dx_and_cr_count_when_the_header_shows_a_breast(tmp_path):
    dx_sop, cr_sop = "1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1"

    def dx_breast(ds):
        ds.SOPClassUID = dx_sop
        ds.Modality = "DX"
        ds.BodyPartExamined = "BREAST"
        del ds.ViewCodeSequence

    def cr_view(ds):
        ds.SOPClassUID = cr_sop
        ds.Modality = "CR"
        ds.BodyPartExamined = ""
        del ds.ViewCodeSequence
        ds.ViewPosition = "MLO"

    def dx_chest(ds):
        ds.SOPClassUID = dx_sop
        ds.Modality = "DX"
        ds.BodyPartExamined = "CHEST"
        del ds.ViewCodeSequence
        ds.ViewPosition = "PA"

    assert read_header(write_dicom(tmp_path / "a.dcm", edit=dx_breast)).modality == "DX"
    assert read_header(write_dicom(tmp_path / "b.dcm", edit=cr_view)).view == "MLO"
    _reject(write_dicom(tmp_path / "c.dcm", edit=dx_chest), "not_mammogram", r"Modality DX, body part CHEST")


def test_for_processing_is_skipped_unless_included(tmp_path):
    def raw(ds):
        ds.PresentationIntentType = "FOR PROCESSING"

    path = write_dicom(tmp_path / "raw.dcm", edit=raw)
    _reject(path, "for_processing", "FOR PROCESSING")
    assert read_header(path, include_for_processing=True).presentation_intent == "FOR PROCESSING"


def test_palette_colour_is_rejected_as_colour(tmp_path):
    def palette(ds):
        ds.PhotometricInterpretation = "PALETTE COLOR"
        ds.RedPaletteColorLookupTableDescriptor = [256, 0, 16]
        ds.GreenPaletteColorLookupTableDescriptor = [256, 0, 16]
        ds.BluePaletteColorLookupTableDescriptor = [256, 0, 16]
        ramp = np.arange(256, dtype="<u2") * 256
        ds.RedPaletteColorLookupTableData = ramp.tobytes()
        ds.GreenPaletteColorLookupTableData = ramp[::-1].copy().tobytes()
        ds.BluePaletteColorLookupTableData = ramp.tobytes()

    path = write_dicom(tmp_path / "pal.dcm", edit=palette)
    assert pydicom.dcmread(path).pixel_array.ndim == 2  # one sample: grey-looking indices
    _reject(path, "colour", "colour image .PALETTE COLOR")
    with pytest.raises(MammogramReadError, match="colour") as info:
        read_mammogram(path)
    assert info.value.category == "colour"


def _multi_frame(ds, frames=3):
    base = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
    stack = np.stack([np.clip(base.astype(np.int32) + 300 * k, 0, 4095).astype("<u2") for k in range(frames)])
    ds.NumberOfFrames = frames
    ds.PixelData = stack.tobytes()


def test_multi_frame_is_refused_without_a_frame_and_never_silently_frame_one(tmp_path):
    path = write_dicom(tmp_path / "tomo.dcm", edit=_multi_frame)
    _reject(path, "multi_frame", r"multi-frame image \(3 frames")
    with pytest.raises(MammogramReadError, match="multi-frame"):
        read_mammogram(path)
    stored = pydicom.dcmread(path).pixel_array
    assert read_header(path, frame=2).frames == 3
    second = read_mammogram(path, frame=2)
    first = read_mammogram(path, frame=1)
    assert not np.array_equal(first.pixels, second.pixels)
    # frame 2 is frame 2: its ordering against frame 1 follows the stored values
    assert stored[1].mean() > stored[0].mean() and second.pixels.mean() > first.pixels.mean()
    _reject(path, "multi_frame", "frames 1-3", frame=5)


def test_empty_modality_lut_item_falls_back_to_rescale(tmp_path):
    def empty_lut(ds):
        ds.ModalityLUTSequence = Sequence([Dataset()])

    plain = read_mammogram(write_dicom(tmp_path / "plain.dcm"))
    odd = read_mammogram(write_dicom(tmp_path / "lut.dcm", edit=empty_lut))
    np.testing.assert_array_equal(odd.pixels, plain.pixels)


@pytest.mark.parametrize("rows, columns", [(1, 1), (2, 2), (MIN_SIDE - 1, 64)])
def test_tiny_images_are_too_small(tmp_path, rows, columns):
    path = write_dicom(tmp_path / "tiny.dcm", np.full((rows, columns), 0.5, np.float32))
    _reject(path, "too_small", f"at least {MIN_SIDE} px per side")
    with pytest.raises(MammogramReadError, match="too small"):
        read_mammogram(path)
    assert read_header(write_dicom(tmp_path / "ok.dcm", np.full((MIN_SIDE, MIN_SIDE), 0.5, np.float32))).rows == MIN_SIDE


def _float_pixels(bad_value):
    def edit(ds):
        values = np.frombuffer(ds.PixelData, dtype="<u2").astype("<f4")
        values[5,] = bad_value
        values[100] = bad_value
        del ds.PixelData
        ds.BitsAllocated = 32
        del ds.BitsStored
        del ds.HighBit
        del ds.PixelRepresentation
        ds.FloatPixelData = values.tobytes()

    return edit


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_rejected_when_read(tmp_path, bad):
    path = write_dicom(tmp_path / "float.dcm", edit=_float_pixels(bad))
    header = read_header(path)  # the header cannot tell ...
    assert header.float_pixels
    with pytest.raises(MammogramReadError, match=r"2 non-finite pixel values") as info:  # ... the read can
        read_mammogram(path)
    assert info.value.category == "non_finite"
    fine = read_mammogram(write_dicom(tmp_path / "fine.dcm", edit=_float_pixels(100.0)))
    assert np.isfinite(fine.pixels).all()


def test_non_finite_rescale_is_rejected_from_the_header(tmp_path):
    def inf_slope(ds):
        ds.RescaleSlope = "inf"

    _reject(write_dicom(tmp_path / "s.dcm", edit=inf_slope), "non_finite", "non-finite RescaleSlope")


@pytest.mark.parametrize(
    "slope, reason", [("0", "RescaleSlope is 0"), ("1e308", "overflow"), ("-1e300", "overflow"), ("1e-60", "too small")]
)
def test_zero_or_overflowing_rescale_is_refused_with_its_reason(tmp_path, slope, reason):
    """Issue 26 item 7: slope 0 was read as 1, slope 1e308 gave an all-ones image; both are refused."""

    def edit(ds):
        ds.RescaleSlope = slope

    _reject(write_dicom(tmp_path / "s.dcm", edit=edit), "non_finite", reason)


def test_refused_rescale_is_refused_by_the_pixel_step_too(tmp_path):
    """The pixel step checks the rescale on the stored values themselves (not only the header's range)."""
    from pydicom import dcmread

    from arfl_studio.data.dicom.lut import pixels_for_display

    ds = dcmread(write_dicom(tmp_path / "ok.dcm"))
    arr = ds.pixel_array
    ds.RescaleSlope = "1e308"
    with pytest.raises(MammogramReadError, match="overflow"):
        pixels_for_display(ds, arr)
    ds.RescaleSlope = "2"
    ds.RescaleIntercept = "-5"
    shown = pixels_for_display(ds, arr)
    assert np.isfinite(shown).all() and shown.max() > shown.min()


def test_scan_verify_finds_what_only_decoding_shows(tmp_path):
    """NaN float pixels pass the header scan; --verify moves them to rejected with the reason."""
    write_dicom(tmp_path / "benign" / "ok.dcm", patient_id="P1")
    write_dicom(tmp_path / "benign" / "nan.dcm", patient_id="P2", edit=_float_pixels(np.nan))
    fast = scan_dataset(tmp_path)
    assert len(fast.images) == 2 and not fast.verified
    checked = scan_dataset(tmp_path, verify=True)
    assert checked.verified and [r.rel_path for r in checked.images] == ["benign/ok.dcm"]
    assert [(r.path, r.category) for r in checked.rejected] == [("benign/nan.dcm", "non_finite")]
    assert checked.summary()["rejected_by_category"]["non_finite"] == 1


def test_scan_cli_verify_and_options(tmp_path, capsys):
    import json

    from arfl_studio.cli import main

    def raw(ds):
        ds.PresentationIntentType = "FOR PROCESSING"

    write_dicom(tmp_path / "benign" / "ok.dcm", patient_id="P1")
    write_dicom(tmp_path / "benign" / "nan.dcm", patient_id="P2", edit=_float_pixels(np.inf))
    write_dicom(tmp_path / "benign" / "raw.dcm", patient_id="P3", edit=raw)
    write_dicom(tmp_path / "benign" / "tomo.dcm", patient_id="P4", edit=_multi_frame)
    out = tmp_path / "scan.json"
    assert main(["scan", str(tmp_path), "--verify", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "for_processing 1" in printed and "multi_frame 1" in printed and "non_finite 1" in printed
    doc = json.loads(out.read_text())
    assert doc["verified"] and [i["path"] for i in doc["images"]] == ["benign/ok.dcm"]
    assert main(["scan", str(tmp_path), "--include-for-processing", "--frame", "2", "--json", str(out), "--force"]) == 0
    doc = json.loads(out.read_text())
    kept = {i["path"]: i.get("frame") for i in doc["images"]}
    assert kept == {"benign/ok.dcm": None, "benign/nan.dcm": None, "benign/raw.dcm": None, "benign/tomo.dcm": 2}
    assert doc["options"] == {"include_non_mammograms": False, "include_for_processing": True, "frame": 2, "verify": False}
    assert main(["scan", str(tmp_path), "--frame", "0"]) == 2  # frames count from 1


def test_verify_can_be_cancelled_and_says_so(tmp_path):
    from arfl_studio.data import verify_scan

    for i in range(4):
        write_dicom(tmp_path / "benign" / f"{i}.dcm", patient_id=f"P{i}")
    result = scan_dataset(tmp_path)
    cancel, seen, progress = cancel_at(2)
    verify_scan(result, progress=progress, cancel=cancel)
    assert result.cancelled and not result.verified and len(result.images) == 4 and seen[-1] == (2, 4)
