"""Lesion records: lesions.csv beside labels.csv, masks, model space, the run folder, and mini-MIAS."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from helpers_data import write_dicom
from realdata import mias_dev

from arfl_studio.data import scan_dataset
from arfl_studio.data.datasets.lesions import (
    Lesion,
    lesion_mask,
    lesion_type,
    lesions_in_model_space,
    model_space_mask,
    pathology,
)
from arfl_studio.data.preprocess.geometry import Geometry, native_to_model_point
from arfl_studio.experiments.sources import record_from_dict, record_to_dict


def test_types_and_pathology_are_normalised_and_the_source_code_kept():
    assert [lesion_type(c) for c in ("CIRC", "SPIC", "MISC", "CALC", "ARCH", "ASYM")] == [
        "mass",
        "mass",
        "mass",
        "calcification",
        "distortion",
        "asymmetry",
    ]
    assert lesion_type("Suspicious Calcification") == "calcification"
    assert lesion_type("Focal Asymmetry") == "asymmetry"
    assert lesion_type("Architectural Distortion") == "distortion"
    assert lesion_type("Skin Thickening") == "other"
    assert pathology("BENIGN_WITHOUT_CALLBACK") == "benign"
    assert pathology("MALIGNANT") == "malignant"
    assert pathology("") is None


def _csv(path, rows):
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_lesions_csv_beside_labels_csv_attaches_lesions_to_their_images(tmp_path):
    write_dicom(tmp_path / "img" / "a.dcm", patient_id="A", laterality="L")
    write_dicom(tmp_path / "img" / "b.dcm", patient_id="B", laterality="R")
    write_dicom(tmp_path / "img" / "c.dcm", patient_id="C", laterality="R")
    np.save(tmp_path / "img" / "b_mask.npy", np.eye(48, 40, dtype=np.uint8))
    _csv(
        tmp_path / "labels.csv",
        [["path", "patient", "label"], ["img/a.dcm", "A", "malignant"], ["img/b.dcm", "B", "benign"], ["img/c.dcm", "C", "normal"]],
    )
    _csv(
        tmp_path / "lesions.csv",
        [
            ["path", "lesion_type", "pathology", "x", "y", "radius", "xmin", "ymin", "xmax", "ymax", "mask"],
            ["img/a.dcm", "SPIC", "malignant", "10", "20", "4", "", "", "", "", ""],
            ["img/a.dcm", "CALC", "malignant", "", "", "", "", "", "", "", ""],  # no position
            ["img/b.dcm", "Mass", "benign", "", "", "", "5", "6", "12", "9", "img/b_mask.npy"],
            ["img/missing.dcm", "CIRC", "benign", "1", "1", "1", "", "", "", "", ""],
            ["img/b.dcm", "CIRC", "benign", "x", "1", "1", "", "", "", "", ""],  # bad number
        ],
    )
    scan = scan_dataset(tmp_path)
    by_path = {r.rel_path: r for r in scan.images}
    a, b, c = by_path["img/a.dcm"].lesions, by_path["img/b.dcm"].lesions, by_path["img/c.dcm"].lesions
    assert [les.source_type for les in a] == ["SPIC", "CALC"] and c == ()
    assert a[0].centre == (20.0, 10.0) and a[0].radius == 4.0 and a[0].lesion_type == "mass"  # x = column
    assert not a[1].has_position
    assert b[0].box == (6.0, 9.0, 5.0, 12.0) and b[0].mask == "img/b_mask.npy" and b[0].shape_kind == "mask"
    counts = scan.summary()["lesions"]
    assert counts["lesions"] == 3 and counts["images_with_lesions"] == 2 and counts["positioned"] == 2
    assert len(scan.lesion_problems) == 2
    assert any("missing.dcm" in p for p in scan.lesion_problems)
    assert any("row 6" in p for p in scan.lesion_problems)
    # the mask lesion is read from its file, relative to the dataset root
    assert np.array_equal(lesion_mask(b, (48, 40), tmp_path), np.eye(48, 40, dtype=bool))
    doc = scan.to_json()
    assert [len(i.get("lesions", [])) for i in doc["images"]] == [2, 1, 0]


def test_lesion_masks_have_the_drawn_area():
    shape = (200, 150)
    disc = lesion_mask([Lesion("mass", centre=(100, 60), radius=20)], shape)
    assert abs(disc.sum() - math.pi * 400) < 0.05 * math.pi * 400
    assert disc[100, 60] and not disc[100, 85]
    box = lesion_mask([Lesion("mass", box=(10, 19, 30, 49))], shape)
    assert box.sum() == 10 * 20 and box[10, 30] and box[19, 49] and not box[20, 49]
    triangle = lesion_mask([Lesion("mass", polygon=((0, 0), (0, 100), (100, 0)))], shape)
    assert abs(triangle.sum() - 5000) < 300 and triangle[10, 10] and not triangle[90, 90]
    point = lesion_mask([Lesion("calcification", centre=(5, 7))], shape)
    assert point.sum() == 1 and point[5, 7]
    assert lesion_mask([Lesion("calcification")], shape).sum() == 0


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_lesions_move_into_model_space_with_the_image(flip, fit):
    geometry = Geometry(flip=flip, bbox=(20, 180, 10, 130), shape=(200, 150))
    size = (64, 48)
    disc = Lesion("mass", centre=(70.0, 40.0), radius=12.0)
    box = Lesion("mass", box=(60, 80, 30, 50))
    moved, moved_box = lesions_in_model_space([disc, box], geometry, size, fit)
    expected = native_to_model_point(70.5, 40.5, geometry, size, fit)  # the pixel's centre
    assert np.allclose(moved.centre, np.array(expected) - 0.5, atol=1e-6)
    assert moved.shape_kind == "polygon" and moved_box.shape_kind == "box"
    assert np.allclose(np.asarray(moved.polygon).mean(axis=0), moved.centre, atol=0.2)
    rows, cols = np.nonzero(model_space_mask([box], geometry, size, fit))
    # the rasterised box lands where its mapped corners say
    assert moved_box.box[0] - 1 <= rows.min() and rows.max() <= moved_box.box[1] + 1
    assert moved_box.box[2] - 1 <= cols.min() and cols.max() <= moved_box.box[3] + 1
    rows, cols = np.nonzero(model_space_mask([disc], geometry, size, fit))
    assert abs(rows.mean() - moved.centre[0]) < 1.0 and abs(cols.mean() - moved.centre[1]) < 1.0
    tiny = model_space_mask([Lesion("calcification", centre=(70.0, 40.0))], geometry, size, fit)
    assert tiny.any()  # a one-pixel calcification survives the downsampling


def test_lesions_survive_the_run_folder_record():
    lesion = Lesion(
        "mass", "SPIC", "malignant", "5", centre=(3.0, 4.0), radius=2.0, polygon=((1.0, 2.0), (3.0, 4.0), (5.0, 1.0)), mask="m/x.dcm"
    )
    record = scan_record_with(lesion)
    back = record_from_dict("/data", record_to_dict(record))
    assert back.lesions == (lesion,)
    assert "lesions" not in record_to_dict(record_from_dict("/data", {**record_to_dict(record), "lesions": []}))


def scan_record_with(lesion):
    from pathlib import Path

    from arfl_studio.data import ImageRecord

    return ImageRecord(path=Path("/data/a.dcm"), rel_path="a.dcm", patient_id="P1", laterality="L", view="CC", label=1, lesions=(lesion,))


@pytest.fixture(scope="module")
def mias_scan():
    return scan_dataset(mias_dev(), workers=2)


def test_mias_dev_scans_with_every_lesion_on_its_image(mias_scan):
    root, scan = mias_dev(), mias_scan
    with open(root / "labels.csv", newline="") as handle:
        images = {row["path"] for row in csv.DictReader(handle)}
    with open(root / "lesions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert scan.layout == "csv" and len(scan.images) == len(images) == 162
    assert not scan.lesion_problems and not scan.rejected
    found = sorted((r.rel_path, les.source_type, les.centre) for r in scan.images for les in r.lesions)
    expected = sorted((row["path"], row["lesion_type"], (float(row["y"]), float(row["x"])) if row["x"].strip() else None) for row in rows)
    assert found == expected
    assert scan.summary()["lesions"]["lesions"] == len(rows)


def test_mias_dev_lesions_lie_on_the_breast(mias_scan):
    """x = column, y = row from the top: the lesion centres fall on the breast (a swap or MIAS's
    bottom-left origin would put many of them on the background)."""
    from arfl_studio.data import read_mammogram
    from arfl_studio.data.preprocess.crop import native_breast_mask

    marked = [r for r in mias_scan.images if any(les.centre is not None for les in r.lesions)][:8]
    on_breast = 0
    total = 0
    for record in marked:
        breast = native_breast_mask(read_mammogram(record.path).pixels)
        for les in record.lesions:
            if les.centre is not None:
                total += 1
                on_breast += bool(breast[int(les.centre[0]), int(les.centre[1])])
    assert total >= 8 and on_breast == total
