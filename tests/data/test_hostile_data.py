"""Hostile data met before any work starts (issue 26 item 17): a decompression-bomb xlsx and an
image with far too many pixels are refused, from the header alone, with a reason that names the
limit and how to change it."""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pydicom
import pytest

from arfl_studio.data import generate_demo_dataset, scan_dataset
from arfl_studio.data.datasets.layouts import LayoutError
from arfl_studio.data.dicom.reader import MammogramReadError, read_header, read_mammogram


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=2, size=(256, 192), seed=0)


def test_a_decompression_bomb_xlsx_is_refused_before_it_is_opened(demo, tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    table = data / "CMMD_clinicaldata_revision.xlsx"
    with zipfile.ZipFile(table, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("xl/bomb.xml", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(1 << 20))  # 64 MB of zeros: about 64 kB in the file
    assert table.stat().st_size < 1_000_000
    monkeypatch.setenv("ARFL_MAX_TABLE_BYTES", str(32_000_000))  # the default is 500 MB; the same check
    start = time.monotonic()
    with pytest.raises(
        LayoutError,
        match=r"CMMD_clinicaldata_revision\.xlsx: it expands to 6\d MB, more than the "
        r"32 MB .*ARFL_MAX_TABLE_BYTES",
    ):
        scan_dataset(data)
    assert time.monotonic() - start < 10
    monkeypatch.setenv("ARFL_MAX_TABLE_BYTES", str(200_000_000))
    assert scan_dataset(data).images  # under the limit the same table is read


def test_a_20000_x_20000_image_is_refused_from_its_header(demo, tmp_path):
    source = next(
        p for p in sorted(demo.rglob("*.dcm")) if not pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID.is_compressed
    )
    ds = pydicom.dcmread(source)
    ds.Rows = ds.Columns = 20000  # the header claims 400 megapixels
    huge = tmp_path / "huge.dcm"
    ds.save_as(huge)
    start = time.monotonic()
    for read in (read_header, read_mammogram):
        with pytest.raises(
            MammogramReadError,
            match=r"image too large \(20000x20000 = 400 megapixels; the limit "
            r"is 100, set ARFL_MAX_PIXELS",
        ) as caught:
            read(huge)
        assert caught.value.category == "too_large"
    assert time.monotonic() - start < 5


def test_the_pixel_limit_is_configurable(demo, monkeypatch):
    path = next(iter(sorted(demo.rglob("*.dcm"))))
    monkeypatch.setenv("ARFL_MAX_PIXELS", "40000")  # below the demo's 256x192
    with pytest.raises(MammogramReadError, match="192x256 = 0 megapixels; the limit is 0.04"):
        read_mammogram(path)
    monkeypatch.setenv("ARFL_MAX_PIXELS", "60000")
    assert read_mammogram(path).pixels.shape == (256, 192)
