"""The demo generator: what real images have, and it never deletes what it did not write."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from test_data_leftovers import dead_pid

from arfl_studio.data import generate_demo_dataset, read_mammogram
from arfl_studio.data.demo import dataset as demo_module
from arfl_studio.data.demo.folder import remove_stale_partials


def test_regenerating_a_demo_keeps_the_users_files(tmp_path, capsys):
    from arfl_studio.cli import main

    out = generate_demo_dataset(tmp_path / "demo", patients=3, size=(32, 32))
    (out / "notes.txt").write_text("my notes")
    (out / "runs" / "r1").mkdir(parents=True)
    (out / "runs" / "r1" / "model.pt").write_bytes(b"weights")
    patient_dir = next((out / "CMMD" / "D1-0003").rglob("1-1.dcm")).parent
    (patient_dir / "annotation.json").write_text("{}")
    assert main(["demo-data", str(out), "--patients", "2", "--size", "32", "32"]) == 0
    assert (out / "notes.txt").read_text() == "my notes"
    assert (out / "runs" / "r1" / "model.pt").read_bytes() == b"weights"
    assert (patient_dir / "annotation.json").is_file()  # kept, though its patient is gone
    assert not list(patient_dir.glob("*.dcm"))  # patient 3's images were the generator's: removed
    assert len(list((out / "CMMD").rglob("*.dcm"))) == 8
    assert demo_module.read_demo_manifest(out)["patients"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no partial folder left


def test_a_folder_that_is_not_a_demo_is_refused_untouched(tmp_path, capsys):
    from arfl_studio.cli import main

    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.docx").write_text("x")
    assert main(["demo-data", str(folder), "--patients", "1"]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "demo_manifest.json" in err and "\n" == err[-1] and err.count("\n") == 1
    assert [p.name for p in folder.iterdir()] == ["chapter1.docx"]
    assert [p.name for p in tmp_path.iterdir()] == ["thesis"]


def test_partial_folders_of_killed_runs_are_removed_and_nothing_else(tmp_path):
    dead = dead_pid()
    stale = tmp_path / f".demo.partial-{dead}"
    (stale / "CMMD" / "D1-0001" / "07-18-2010-NA-NA-10000" / "1.000000-NA-20000").mkdir(parents=True)
    (stale / "CMMD" / "D1-0001" / "07-18-2010-NA-NA-10000" / "1.000000-NA-20000" / "1-1.dcm").write_bytes(b"half")
    other_name = tmp_path / f".other.partial-{dead}"
    other_name.mkdir()
    (other_name / "CMMD_clinicaldata_revision.xlsx").write_bytes(b"x")
    foreign = tmp_path / f".mine.partial-{dead}"
    foreign.mkdir()
    (foreign / "thesis.docx").write_bytes(b"mine")
    live = tmp_path / f".demo.partial-{_live_pid()}"
    live.mkdir()
    (live / "demo_manifest.json").write_text("{}")
    assert sorted(p.name for p in remove_stale_partials(tmp_path)) == sorted([stale.name, other_name.name])
    assert foreign.exists() and live.exists()
    # and generation does it on its own
    stale.mkdir()
    generate_demo_dataset(tmp_path / "demo", patients=1, size=(32, 32))
    assert not stale.exists() and foreign.exists()


_SLEEPER = None


def _live_pid() -> int:
    global _SLEEPER
    _SLEEPER = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    return _SLEEPER.pid


@pytest.fixture(autouse=True)
def _stop_sleeper():
    yield
    global _SLEEPER
    if _SLEEPER is not None:
        _SLEEPER.kill()
        _SLEEPER.wait()
        _SLEEPER = None


def test_demo_files_carry_labels_stripes_and_hologic_style_windows(tmp_path):
    import pydicom

    out = generate_demo_dataset(tmp_path / "demo", patients=4, size=(96, 80), seed=1)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(out.rglob("*.dcm"))]
    assert {h.BurnedInAnnotation for h in headers} == {"YES", "NO"}
    mono1 = [h for h in headers if h.PhotometricInterpretation == "MONOCHROME1"]
    assert mono1 and all(float(h.WindowWidth) < 4000 for h in mono1)  # fitted to the tissue
    assert any(h.VOILUTFunction == "SIGMOID" for h in mono1)
    # a burned-in label is the brightest thing in its image and sits in a corner away from the chest wall
    for path, header in zip(sorted(out.rglob("*.dcm")), headers):
        if header.BurnedInAnnotation != "YES":
            continue
        pixels = read_mammogram(path).pixels
        rows, cols = pixels.shape
        far = slice(cols // 2, cols) if header.ImageLaterality == "L" else slice(0, cols // 2)
        corners = np.concatenate([pixels[: rows // 5, far].ravel(), pixels[-rows // 5 :, far].ravel()])
        assert corners.max() >= pixels.max() - 0.02


def test_large_patients_are_rendered_at_detector_size(tmp_path, monkeypatch):
    import pydicom

    monkeypatch.setattr(demo_module, "LARGE_SIZE", (300, 244))  # the plumbing, at a test's size
    out = generate_demo_dataset(tmp_path / "demo", patients=2, size=(40, 32), large_patients=1)
    shapes = {(p.parts[-4], pydicom.dcmread(p, stop_before_pixels=True).Rows) for p in out.rglob("*.dcm")}
    assert shapes == {("D1-0001", 300), ("D1-0002", 40)}
    # the pixel spacing follows the image size: both patients' breasts span the same millimetres
    heights = {
        p.parts[-4]: ds.Rows * float(ds.PixelSpacing[0]) for p in out.rglob("*.dcm") for ds in [pydicom.dcmread(p, stop_before_pixels=True)]
    }
    assert heights["D1-0001"] == pytest.approx(heights["D1-0002"], rel=0.01)
    assert 150 < heights["D1-0001"] < 350  # a breast-sized field in mm, not metres
    assert demo_module.read_demo_manifest(out)["large_patients"] == 1
    with pytest.raises(ValueError, match="large_patients"):
        generate_demo_dataset(tmp_path / "x", patients=1, large_patients=2)


def test_skin_line_falls_off_gradually_with_a_dim_rim():
    from arfl_studio.data.demo.image import breast_shape, render_view_with_mask

    shape = breast_shape(np.random.default_rng(0))
    img, breast = render_view_with_mask(np.random.default_rng(1), (200, 160), "CC", shape, [])
    row = img[100]  # through the middle, chest wall on the left
    edge = int(np.flatnonzero(breast[100])[-1])
    inner = float(np.median(row[edge - 40 : edge - 30]))
    ramp = row[edge - 8 : edge + 1]
    assert 0.04 < float(np.median(row[edge - 6 : edge - 2])) < inner  # a dim rim, brighter than background
    assert np.all(np.diff(np.convolve(ramp, np.ones(3) / 3, mode="valid")) < 0.02)  # falls, no sharp step up
    assert float(np.median(row[edge + 4 :])) < 0.05  # background beyond the skin
