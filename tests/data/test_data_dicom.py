"""read_mammogram / read_header: pydicom's own test files and generated quirks."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from helpers_data import phantom, write_dicom

from arfl_studio.data import MammogramReadError, read_header, read_mammogram
from arfl_studio.data.dicom.reader import apply_window
from arfl_studio.data.datasets.reasons import CATEGORIES


def test_every_pydicom_test_file_loads_or_is_rejected_with_a_reason():
    from pydicom.data import get_testdata_files

    files = get_testdata_files()
    assert len(files) > 100
    loaded = rejected = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            for reader in (read_mammogram, read_header):
                try:
                    result = reader(path)
                except MammogramReadError as err:
                    reason = str(err)
                    assert reason and "\n" not in reason, (path, reason)
                    assert err.category in CATEGORIES
                    rejected += 1
                    continue
                loaded += 1
                if reader is read_mammogram:
                    px = result.pixels
                    assert px.dtype == np.float32 and px.ndim == 2
                    assert float(px.min()) >= 0.0 and float(px.max()) <= 1.0
                    assert (result.rows, result.columns) == px.shape
    # most of pydicom's files are tiny, colour or not images; the rest must load
    assert loaded >= 10 and rejected > 50


def test_header_predicts_decodability_on_pydicom_test_files():
    """A file the header check passes decodes, except a damaged compressed stream (--verify finds those)."""
    from pydicom.data import get_testdata_files

    surprises = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in get_testdata_files():
            try:
                read_header(path, include_non_mammograms=True, include_for_processing=True)
            except MammogramReadError:
                continue
            try:
                read_mammogram(path)
            except MammogramReadError as err:
                surprises.append((path.rsplit("/", 1)[-1], str(err)))
    # the one damaged stream: newer decoders refuse it, older ones (pylibjpeg-openjpeg 2.3) decode it
    assert [name for name, _ in surprises] in ([], ["JPEG2000-embedded-sequence-delimiter.dcm"]), surprises


def test_monochrome1_comes_out_with_bright_tissue(tmp_path):
    img = phantom()
    tissue = img > 0.3
    for photometric in ("MONOCHROME1", "MONOCHROME2"):
        path = write_dicom(tmp_path / f"{photometric}.dcm", img, photometric=photometric)
        stored = pydicom.dcmread(path).pixel_array
        m = read_mammogram(path)
        assert m.pixels[tissue].mean() > m.pixels[~tissue].mean() + 0.3, photometric
        if photometric == "MONOCHROME1":
            assert stored[tissue].mean() < stored[~tissue].mean()  # stored dark, shown bright


def test_sigmoid_and_linear_voi_follow_the_dicom_formulas(tmp_path):
    img = phantom()
    path = write_dicom(tmp_path / "sig.dcm", img, voi="SIGMOID")
    ds = pydicom.dcmread(path)
    x = ds.pixel_array.astype(np.float64)
    c, w = float(ds.WindowCenter), float(ds.WindowWidth)
    expected = 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    np.testing.assert_allclose(read_mammogram(path).pixels, expected, atol=1e-5)
    # window formulas on known points
    a = apply_window(np.array([0.0, 1024.0, 2048.0, 5000.0], np.float32), 2048, 4096, "SIGMOID")
    np.testing.assert_allclose(a, [1 / (1 + np.e**2), 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-4 * 2952 / 4096))], atol=1e-6)
    lin = apply_window(np.array([0.0, 100.0, 150.0, 300.0], np.float32), 150, 101, "LINEAR")
    np.testing.assert_allclose(lin, [0.0, 0.005, 0.505, 1.0], atol=1e-5)
    exact = apply_window(np.array([100.0, 150.0, 200.0], np.float32), 150, 100, "LINEAR_EXACT")
    np.testing.assert_allclose(exact, [0.0, 0.5, 1.0], atol=1e-6)


def test_no_voi_means_min_max(tmp_path):
    def drop(ds):
        del ds.WindowCenter
        del ds.WindowWidth
        del ds.VOILUTFunction

    m = read_mammogram(write_dicom(tmp_path / "raw.dcm", edit=drop))
    assert m.pixels.min() == 0.0 and m.pixels.max() == pytest.approx(1.0)


def test_view_only_in_view_code_sequence_and_laterality_only_in_laterality(tmp_path):
    def only_laterality(ds):
        del ds.ImageLaterality
        ds.Laterality = "R"

    path = write_dicom(tmp_path / "a" / "noext", view="MLO", edit=only_laterality)
    m = read_mammogram(path)
    assert pydicom.dcmread(path).ViewPosition == ""
    assert (m.view, m.laterality) == ("MLO", "R")
    h = read_header(path)
    assert (h.view, h.laterality, h.patient_id) == ("MLO", "R", "P-0001")
    cc = read_mammogram(write_dicom(tmp_path / "b.dicom", view="CC"))
    assert (cc.view, cc.laterality, cc.presentation_intent) == ("CC", "L", "FOR PRESENTATION")
    from arfl_studio.data.demo.dicom_files import demo_pixel_spacing

    assert cc.pixel_spacing == (demo_pixel_spacing((48, 40)),) * 2  # the header's spacing, read as written

    def view_position(ds):  # ViewPosition counts when there is no coded view
        ds.ViewPosition = "ML"
        del ds.ViewCodeSequence

    assert read_mammogram(write_dicom(tmp_path / "c.dcm", edit=view_position)).view == "ML"


@pytest.mark.parametrize(
    "syntax",
    ["1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"],
    ids=["RLE", "JPEG2000", "JPEG-LS"],
)
@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_compressed_files_decode_to_the_uncompressed_pixels(tmp_path, syntax, photometric):
    img = phantom(64, 52)
    plain = read_mammogram(write_dicom(tmp_path / "plain.dcm", img, photometric=photometric))
    packed_path = write_dicom(tmp_path / "packed.dcm", img, photometric=photometric, syntax=syntax)
    assert str(pydicom.dcmread(packed_path).file_meta.TransferSyntaxUID) == syntax
    packed = read_mammogram(packed_path)
    np.testing.assert_array_equal(packed.pixels, plain.pixels)


def test_jpeg_lossless_decodes_with_the_permissive_plugin():
    from pydicom.data import get_testdata_file
    from pydicom.pixels.decoders import JPEGLosslessSV1Decoder

    from arfl_studio.data.dicom.reader import missing_decoder

    # pydicom bundles no grayscale process-14 file; its RGB one proves the plugin works.
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_gdcm.dcm"))
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.70"
    assert "gdcm" in JPEGLosslessSV1Decoder.available_plugins  # python-gdcm (BSD), not GPL libjpeg
    assert ds.pixel_array.shape == (100, 100, 3)
    assert missing_decoder("1.2.840.10008.1.2.4.70") is None


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"hello, I am not a DICOM file at all" * 10, "not a DICOM file"),
    ],
)
def test_bad_files_are_rejected_with_a_reason(tmp_path, content, reason):
    path = tmp_path / "bad.dcm"
    path.write_bytes(content)
    for reader in (read_mammogram, read_header):
        with pytest.raises(MammogramReadError, match=reason):
            reader(path)


def test_truncated_and_pixel_less_files_are_rejected(tmp_path):
    good = write_dicom(tmp_path / "good.dcm")
    data = good.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) - 500])
    with pytest.raises(MammogramReadError, match="truncated|pixel data"):
        read_header(cut)
    with pytest.raises(MammogramReadError):
        read_mammogram(cut)

    def no_pixels(ds):
        del ds.PixelData

    nopix = write_dicom(tmp_path / "nopix.dcm", edit=no_pixels)
    for reader in (read_mammogram, read_header):
        with pytest.raises(MammogramReadError, match="no pixel data"):
            reader(nopix)


def test_missing_decoder_names_the_package(monkeypatch):
    from arfl_studio.data.dicom import reader as dicom

    class Unavailable:
        is_available = False

    monkeypatch.setattr("pydicom.pixels.get_decoder", lambda uid: Unavailable())
    reason = dicom.missing_decoder("1.2.840.10008.1.2.4.90")
    assert "pylibjpeg-openjpeg" in reason and "pip install" in reason
    assert "python-gdcm" in dicom.missing_decoder("1.2.840.10008.1.2.4.70")
