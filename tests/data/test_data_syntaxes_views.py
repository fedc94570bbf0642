"""Transfer syntaxes named with their reason, decodability predicted from the header, exact view codes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from helpers_data import write_dicom, write_with_syntax
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from arfl_studio.data import MammogramReadError, read_header, read_mammogram, scan_dataset
from arfl_studio.data.dicom.decoders import transfer_syntax_problem
from arfl_studio.data.datasets.views import view_family, view_of


@pytest.mark.parametrize(
    "uid, implicit, words",
    [
        ("1.2.840.10008.1.2.8.1", False, "Deflated Image Frame Compression"),
        ("1.2.840.113619.5.2", True, "GE private Implicit VR Big Endian"),
        ("1.2.826.0.1.3680043.9.9999.1", False, "private transfer syntax"),
    ],
    ids=["deflated-image-frames", "GE-private", "unknown-private"],
)
def test_unsupported_syntaxes_are_named_with_uid_and_why(tmp_path, uid, implicit, words):
    path = write_with_syntax(tmp_path / "x.dcm", uid, implicit=implicit)
    for reader in (read_header, read_mammogram):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(MammogramReadError) as info:
                reader(path)
        reason = str(info.value)
        assert info.value.category == "undecodable"
        assert uid in reason and words in reason and "ValueError" not in reason


def test_deflated_data_set_reads_like_the_plain_file(tmp_path):
    plain_path = write_dicom(tmp_path / "plain.dcm")
    plain = read_mammogram(plain_path)

    def deflate(ds):
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"  # pydicom deflates on save

    deflated = write_dicom(tmp_path / "deflate.dcm", edit=deflate)
    assert deflated.stat().st_size < plain_path.stat().st_size  # really deflated
    assert read_header(deflated).transfer_syntax == "1.2.840.10008.1.2.1.99"
    np.testing.assert_array_equal(read_mammogram(deflated).pixels, plain.pixels)


def test_12_bit_jpeg_extended_is_predicted_from_header_and_plugins(monkeypatch):
    """pydicom's own 12-bit JPEG Extended files: gdcm and pillow refuse 12 bits, only the GPL plugin decodes."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file("JPGExtended.dcm")
    with pytest.raises(MammogramReadError) as info:
        read_header(path, include_non_mammograms=True)
    reason = str(info.value)
    assert info.value.category == "undecodable"
    assert "12-bit" in reason and "1.2.840.10008.1.2.4.51" in reason and "pylibjpeg-libjpeg" in reason
    assert transfer_syntax_problem("1.2.840.10008.1.2.4.51", 8) is None  # 8-bit: gdcm/pillow decode it

    class WithGplPlugin:  # as if pylibjpeg-libjpeg were installed
        is_available = True
        available_plugins = ("gdcm", "pillow", "pylibjpeg")

    class NoPlugin:
        is_available = False
        available_plugins = ()

    monkeypatch.setattr("pydicom.pixels.get_decoder", lambda uid: WithGplPlugin())
    assert transfer_syntax_problem("1.2.840.10008.1.2.4.51", 12) is None
    monkeypatch.setattr("pydicom.pixels.get_decoder", lambda uid: NoPlugin())
    reason = transfer_syntax_problem("1.2.840.10008.1.2.4.90", 16)
    assert "JPEG 2000" in reason and "1.2.840.10008.1.2.4.90" in reason and "pip install pylibjpeg-openjpeg" in reason


def test_scan_rejects_undecodable_files_before_any_run(tmp_path):
    write_dicom(tmp_path / "benign" / "ok.dcm", patient_id="A")
    write_with_syntax(tmp_path / "benign" / "frames.dcm", "1.2.840.10008.1.2.8.1", patient_id="B")
    result = scan_dataset(tmp_path)
    assert [r.rel_path for r in result.images] == ["benign/ok.dcm"]
    assert [(r.path, r.category) for r in result.rejected] == [("benign/frames.dcm", "undecodable")]
    assert result.summary()["rejected_by_category"]["undecodable"] == 1


def _coded(value, scheme, meaning, modifier=None):
    def edit(ds):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        if modifier:
            mod = Dataset()
            mod.CodeValue, mod.CodingSchemeDesignator, mod.CodeMeaning = modifier
            item.ViewModifierCodeSequence = Sequence([mod])
        ds.ViewCodeSequence = Sequence([item])
        ds.ViewPosition = ""

    return edit


# CID 4014 rows (SNOMED CT and the legacy SRT value) written out from the standard.
CID_4014 = [
    ("399260004", "R-10224", "medio-lateral", "ML", None),
    ("399368009", "R-10226", "medio-lateral oblique", "MLO", "MLO"),
    ("399352003", "R-10228", "latero-medial", "LM", None),
    ("399099002", "R-10230", "latero-medial oblique", "LMO", "MLO"),
    ("399162004", "R-10242", "cranio-caudal", "CC", "CC"),
    ("399196006", "R-10244", "caudo-cranial (from below)", "FB", "CC"),
    ("399188001", "R-102D0", "superolateral to inferomedial oblique", "SIO", "MLO"),
    ("441555000", "R-40AAA", "inferomedial to superolateral oblique", "ISO", "MLO"),
    ("399192008", "R-1024A", "cranio-caudal exaggerated laterally", "XCCL", "CC"),
    ("399101009", "R-1024B", "cranio-caudal exaggerated medially", "XCCM", "CC"),
    ("127457009", "G-8310", "tissue specimen from breast", "SPECIMEN", None),
]


@pytest.mark.parametrize("sct, srt, meaning, view, family", CID_4014, ids=[r[3] for r in CID_4014])
def test_view_codes_map_exactly(tmp_path, sct, srt, meaning, view, family):
    for value, scheme in ((sct, "SCT"), (srt, "SRT")):
        path = write_dicom(tmp_path / f"{value}.dcm", edit=_coded(value, scheme, meaning))
        header = read_header(path)
        assert (header.view, header.view_family) == (view, family)


def test_view_text_is_never_matched_loosely(tmp_path):
    # the exaggerated view's meaning contains "cranio-caudal" but it is not a CC
    xccl = read_header(write_dicom(tmp_path / "x.dcm", edit=_coded("399192008", "SCT", "cranio-caudal exaggerated laterally")))
    assert xccl.view == "XCCL"
    # a meaning without a known code (or a code of another scheme) gives no view
    text_only = read_header(write_dicom(tmp_path / "t.dcm", edit=_coded("", "", "cranio-caudal")))
    assert text_only.view is None
    other_scheme = read_header(write_dicom(tmp_path / "o.dcm", edit=_coded("399162004", "99PRIVATE", "cranio-caudal")))
    assert other_scheme.view is None


def test_view_modifiers_make_cleavage_and_axillary_tail_views(tmp_path):
    cv = read_header(
        write_dicom(tmp_path / "cv.dcm", edit=_coded("399162004", "SCT", "cranio-caudal", modifier=("399161006", "SCT", "cleavage")))
    )
    at = read_header(
        write_dicom(
            tmp_path / "at.dcm", edit=_coded("399368009", "SCT", "medio-lateral oblique", modifier=("R-102D1", "SRT", "axillary tail"))
        )
    )
    assert (cv.view, cv.view_family) == ("CV", "CC") and (at.view, at.view_family) == ("AT", "MLO")


def test_scan_json_keeps_the_exact_view_and_its_family(tmp_path):
    write_dicom(tmp_path / "benign" / "a.dcm", patient_id="A", edit=_coded("R-1024A", "SRT", "cranio-caudal exaggerated laterally"))
    write_dicom(tmp_path / "benign" / "b.dcm", patient_id="A", view="MLO")
    doc = scan_dataset(tmp_path).to_json()
    views = {i["path"]: (i["view"], i["view_family"]) for i in doc["images"]}
    assert views == {"benign/a.dcm": ("XCCL", "CC"), "benign/b.dcm": ("MLO", "MLO")}
    assert doc["counts"]["by_view"] == {"MLO": 1, "XCCL": 1} and doc["counts"]["by_view_family"] == {"CC": 1, "MLO": 1}


def test_view_family_of_plain_view_positions():
    assert [view_family(v) for v in ("CC", "mlo", "XCCM", "ML", "LM", None, "AP")] == ["CC", "MLO", "CC", None, None, None, None]
    ds = Dataset()
    ds.ViewPosition = "xccl"
    assert view_of(ds) == "XCCL"


def test_a_damaged_deflated_file_names_its_syntax(tmp_path):
    def deflate(ds):
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"

    data = write_dicom(tmp_path / "d.dcm", edit=deflate).read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[: len(data) // 2])
    for reader in (read_header, read_mammogram):
        with pytest.raises(
            MammogramReadError, match=r"damaged Deflated Explicit VR Little Endian data set \(1\.2\.840\.10008\.1\.2\.1\.99\)"
        ):
            reader(cut)
