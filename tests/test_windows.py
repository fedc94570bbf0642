"""Window/level in the image's own units after the modality LUT (issue 25 item 12), on a synthetic
DICOM with a rescale and two window pairs: the reader's display scale gives the modality value of
every pixel, every header window is a preset by its explanation, and the readout reads back the
header's centre and width."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from synthetic_dicom import write_mammogram

from arfl_studio.data.dicom.lut import DisplayScale
from arfl_studio.data.dicom.reader import read_mammogram
from arfl_studio.data.dicom.windows import (
    header_windows,
    levels_window,
    transfer_levels,
    window_levels,
    window_presets,
    window_text,
)

STORED = np.linspace(0, 4095, 64 * 48).reshape(64, 48).astype(np.uint16)
MODALITY = STORED.astype(np.float64) * 2 - 1000  # RescaleSlope 2, RescaleIntercept -1000
TWO_WINDOWS = dict(
    RescaleSlope="2",
    RescaleIntercept="-1000",
    WindowCenter=[1000, 3000],
    WindowWidth=[2001, 6001],
    WindowCenterWidthExplanation=["SOFT", "WIDE"],
)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_display_scale_gives_every_pixel_its_modality_value(tmp_path, photometric):
    path = write_mammogram(tmp_path / "w.dcm", STORED, PhotometricInterpretation=photometric, **TWO_WINDOWS)
    wide = read_mammogram(path, clip=False)
    scale = wide.display_scale
    # LINEAR, C 1000 W 2001: modality -0.5 is black, 1999.5 white (PS3.3 C.11.2.1.2)
    assert scale == DisplayScale(-0.5, 2000.0, photometric == "MONOCHROME1", "LINEAR")
    np.testing.assert_allclose(scale.to_modality(wide.pixels.astype(np.float64)), MODALITY, atol=2e-3 * 4000)
    # unclipped: what lies outside the first window is kept, and clipping it gives the model's pixels exactly
    assert wide.pixels.min() < 0 and wide.pixels.max() > 1
    assert np.array_equal(np.clip(wide.pixels, 0, 1), read_mammogram(path).pixels)


def test_every_header_window_is_a_preset_in_modality_units(tmp_path):
    path = write_mammogram(tmp_path / "w.dcm", STORED, **TWO_WINDOWS)
    scale = read_mammogram(path, clip=False).display_scale
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    assert [(w.name, w.centre, w.width) for w in header_windows(ds)] == [("SOFT", 1000, 2001), ("WIDE", 3000, 6001)]
    presets = window_presets(ds, scale)
    assert list(presets) == ["SOFT: C 1000 W 2001", "WIDE: C 3000 W 6001"]
    assert presets["SOFT: C 1000 W 2001"] == (0.0, 1.0)  # the window the reader applied
    # the readout reads each preset back as the header wrote it
    assert window_text(presets["SOFT: C 1000 W 2001"], scale) == "W 2001  L 1000"
    assert window_text(presets["WIDE: C 3000 W 6001"], scale) == "W 6001  L 3000"
    # the wide window's black and white are the modality values DICOM's LINEAR function gives
    low, high = window_levels(3000, 6001)
    assert (low, high) == (-0.5, 5999.5)
    assert [float(scale.to_modality(v)) for v in presets["WIDE: C 3000 W 6001"]] == pytest.approx([low, high])


def test_window_and_levels_are_inverse_and_linked_views_share_modality_values():
    for function in ("LINEAR", "LINEAR_EXACT"):
        assert levels_window(window_levels(40.5, 401, function), function) == pytest.approx((40.5, 401))
    a, b = DisplayScale(0.0, 4095.0), DisplayScale(-1000.0, 2000.0, inverted=True)
    shown_b = transfer_levels((0.25, 0.5), a, b)
    assert sorted(b.to_modality(np.array(shown_b))) == pytest.approx([0.25 * 4095, 0.5 * 4095])
    assert transfer_levels((0.25, 0.5), a, None) == (0.25, 0.5)  # no scale: display units


def test_no_straight_line_no_modality_units(tmp_path):
    path = write_mammogram(tmp_path / "s.dcm", STORED, VOILUTFunction="SIGMOID", **TWO_WINDOWS)
    mammogram = read_mammogram(path, clip=False)
    assert mammogram.display_scale is None
    assert window_presets(pydicom.dcmread(path, stop_before_pixels=True), None) == {"Header window (sigmoid)": (0.0, 1.0)}
    assert window_text((0.0, 1.0), None) == "W 1.000  L 0.500"
    bare = write_mammogram(tmp_path / "b.dcm", STORED)  # no window: the reader's min-max
    scale = read_mammogram(bare).display_scale
    assert scale is not None and (scale.low, scale.span) == (0.0, 4095.0)
    assert window_presets(pydicom.dcmread(bare, stop_before_pixels=True), scale) == {"Image min–max": (0.0, 1.0)}
