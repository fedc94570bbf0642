"""The public datasets as they come off the download: CBIS-DDSM, VinDr-Mammo, INbreast, RSNA, CMMD's
missing-row policy. Phantom folders reproduce the real names, columns, quoting and traps."""

from __future__ import annotations

import csv
import plistlib

import numpy as np
import pytest
from biff_sheet import write_xls
from helpers_data import phantom, write_dicom

from arfl_studio.data import scan_dataset
from arfl_studio.data.datasets.lesions import lesion_mask

UID = "1.3.6.1.4.1.9590.100.1.2."


def _write_csv(path, rows, **kw):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, **kw).writerows(rows)


def _cbis_like(ds):
    """CBIS-DDSM files: series-level Laterality only, no ImageLaterality, no view code."""
    ds.Laterality = ds.ImageLaterality
    del ds.ImageLaterality
    del ds.ViewCodeSequence
    ds.ViewPosition = ""


MASS = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
CALC = [
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
META = [
    "Series UID",
    "Collection",
    "3rd Party Analysis",
    "Data Description URI",
    "Subject ID",
    "Study UID",
    "Study Description",
    "Study Date",
    "Series Description",
    "Manufacturer",
    "Modality",
    "SOP Class Name",
    "SOP Class UID",
    "Number of Images",
    "File Size",
    "File Location",
    "Download Timestamp",
]


@pytest.fixture
def cbis(tmp_path):
    root = tmp_path / "download"
    meta = [META]

    def series(subject, description, files):
        folder = f"{subject}/07-20-2016-DDSM-NA-{len(meta):05d}/1.000000-{description}-{len(meta) * 7:05d}"
        meta.append(
            [
                UID + str(len(meta)),
                "CBIS-DDSM",
                "NO",
                "",
                subject,
                UID + "9",
                "",
                "",
                description,
                "",
                "MG",
                "",
                "",
                str(len(files)),
                "",
                ".\\CBIS-DDSM\\" + folder.replace("/", "\\"),
                "",
            ]
        )
        for name, pixels, side in files:
            write_dicom(root / "CBIS-DDSM" / folder / name, pixels, laterality=side, patient_id=subject, edit=_cbis_like)

    full, crop, mask = phantom(48, 40), phantom(36, 32), (np.eye(48, 40) > 0).astype(np.float32)
    series("Mass-Training_P_00001_LEFT_CC", "full mammogram images", [("1-1.dcm", full, "L")])
    # crop and mask share the series, in the swapped order: 1-1 is the crop
    series("Mass-Training_P_00001_LEFT_CC_1", "ROI mask images", [("1-1.dcm", crop, "L"), ("1-2.dcm", mask, "L")])
    series("Mass-Training_P_00002_RIGHT_MLO", "full mammogram images", [("1-1.dcm", phantom(48, 40, False), "R")])
    series("Calc-Test_P_00001_LEFT_CC", "full mammogram images", [("1-1.dcm", full, "L")])
    series("Calc-Test_P_00001_LEFT_CC_1", "ROI mask images", [("1-1.dcm", phantom(40, 36), "L")])  # wrong size
    _write_csv(root / "metadata.csv", meta)

    def path(subject, leaf="000000.dcm"):  # UID folders and names that do not exist on disk
        return f"{subject}/{UID}4221127/{UID}3423861/{leaf}"

    _write_csv(
        root / "mass_case_description_train_set.csv",
        [
            MASS,
            [
                "P_00001",
                "3",
                "LEFT",
                "CC",
                "1",
                "mass",
                "IRREGULAR",
                "SPICULATED",
                "5",
                "MALIGNANT",
                "5",
                path("Mass-Training_P_00001_LEFT_CC"),
                path("Mass-Training_P_00001_LEFT_CC_1") + "\n",
                path("Mass-Training_P_00001_LEFT_CC_1", "000001.dcm") + "\n",
            ],
            [
                "P_00002",
                "2",
                "RIGHT",
                "MLO",
                "1",
                "mass",
                "OVAL",
                "CIRCUMSCRIBED",
                "3",
                "BENIGN_WITHOUT_CALLBACK",
                "4",
                path("Mass-Training_P_00002_RIGHT_MLO"),
                path("Mass-Training_P_00002_RIGHT_MLO_1"),
                path("Mass-Training_P_00002_RIGHT_MLO_1", "000001.dcm"),
            ],
        ],
    )
    _write_csv(
        root / "calc_case_description_test_set.csv",
        [
            CALC,
            [
                "P_00001",
                "3",
                "LEFT",
                "CC",
                "1",
                "calcification",
                "PLEOMORPHIC",
                "CLUSTERED",
                "4",
                "BENIGN",
                "3",
                path("Calc-Test_P_00001_LEFT_CC"),
                path("Calc-Test_P_00001_LEFT_CC_1"),
                path("Calc-Test_P_00001_LEFT_CC_1") + "\n",
            ],
        ],
    )
    (root / "mass_case_description_test_set.csv").write_text(",".join(MASS) + "\n")
    (root / "calc_case_description_train_set.csv").write_text(",".join(CALC) + "\n")
    return root


def test_cbis_ddsm_joins_through_metadata_and_tells_mask_from_crop_by_size(cbis):
    scan = scan_dataset(cbis)
    assert scan.layout == "cbis-ddsm" and "MALIGNANT" in scan.label_rule
    by_subject = {r.rel_path.split("/")[1]: r for r in scan.images}
    assert sorted(by_subject) == ["Calc-Test_P_00001_LEFT_CC", "Mass-Training_P_00001_LEFT_CC", "Mass-Training_P_00002_RIGHT_MLO"]
    mass = by_subject["Mass-Training_P_00001_LEFT_CC"]
    assert (mass.label, mass.patient_id, mass.laterality, mass.view, mass.split) == (1, "P_00001", "L", "CC", "train")
    (lesion,) = mass.lesions
    assert lesion.mask.endswith("1-2.dcm") and lesion.pathology == "malignant" and lesion.birads == "5"
    assert np.array_equal(lesion_mask(mass.lesions, (48, 40), scan.root), np.eye(48, 40, dtype=bool))
    assert by_subject["Mass-Training_P_00002_RIGHT_MLO"].label == 0  # BENIGN_WITHOUT_CALLBACK
    calc = by_subject["Calc-Test_P_00001_LEFT_CC"]
    assert calc.split == "test" and calc.lesions[0].mask is None and calc.lesions[0].lesion_type == "calcification"
    assert any("Calc-Test_P_00001_LEFT_CC_1" in p and "size" in p for p in scan.lesion_problems)
    assert len(scan.excluded) == 3 and all("ROI mask or cropped image" in why for _p, why in scan.excluded)
    notes = " ".join(scan.notes)
    assert "both the official train and test" in notes and "both mass and calc" in notes
    assert scan.labels_without_images == []
    assert scan.summary()["excluded"] == 3


def test_cbis_ddsm_can_be_forced(cbis):
    assert scan_dataset(cbis / "CBIS-DDSM", layout="cbis-ddsm").layout == "cbis-ddsm"  # tables one level up


@pytest.fixture
def vindr(tmp_path):
    root = tmp_path / "vindr-mammo"
    cols = [
        "study_id",
        "series_id",
        "image_id",
        "laterality",
        "view_position",
        "height",
        "width",
        "breast_birads",
        "breast_density",
        "split",
    ]
    images = [("s1", "a", "L", "CC", "BI-RADS 4"), ("s1", "b", "R", "CC", "BI-RADS 1"), ("s2", "c", "L", "MLO", "BI-RADS 3")]
    rows = [cols]
    for study, image, side, view, birads in images:
        write_dicom(root / "images" / study / f"{image}.dicom", laterality=side, view=view, patient_id="")
        rows.append([study, "x", image, side, view, "48", "40", birads, "DENSITY C", "training"])
    _write_csv(root / "breast-level_annotations.csv", rows)
    finding = cols[:7] + [
        "breast_birads",
        "breast_density",
        "finding_categories",
        "finding_birads",
        "xmin",
        "ymin",
        "xmax",
        "ymax",
        "split",
    ]
    _write_csv(
        root / "finding_annotations.csv",
        [
            finding,
            [
                "s1",
                "x",
                "a",
                "L",
                "CC",
                "48",
                "40",
                "BI-RADS 4",
                "DENSITY C",
                "['Mass', 'Suspicious Calcification']",
                "BI-RADS 4",
                "-2.5",
                "10",
                "12.0",
                "20",
                "training",
            ],
            ["s1", "x", "b", "R", "CC", "48", "40", "BI-RADS 1", "DENSITY C", "['No Finding']", "", "", "", "", "", "training"],
        ],
    )
    return root


def test_vindr_labels_from_birads_through_a_visible_mapping(vindr):
    scan = scan_dataset(vindr)
    assert scan.layout == "vindr" and "BI-RADS" in scan.label_rule and any("not pathology" in n for n in scan.notes)
    labels = {r.rel_path: (r.label, r.patient_id, r.view) for r in scan.images}
    assert labels == {"images/s1/a.dicom": (1, "s1", "CC"), "images/s1/b.dicom": (0, "s1", "CC")}
    assert scan.excluded == [("images/s2/c.dicom", "excluded by the BI-RADS mapping: breast BI-RADS 3")]
    (a,) = [r for r in scan.images if r.rel_path.endswith("a.dicom")]
    (lesion,) = a.lesions
    assert lesion.box == (10.0, 20.0, -2.5, 12.0) and lesion.lesion_type == "mass" and lesion.birads == "4"
    assert lesion_mask(a.lesions, (48, 40))[15, 0]  # a negative xmin is clipped to the image
    changed = scan_dataset(vindr, layout_options={"birads_positive": "3,4,5"})
    assert {r.rel_path: r.label for r in changed.images}["images/s2/c.dicom"] == 1


def test_inbreast_reads_the_semicolon_table_and_the_osirix_rois(tmp_path):
    root = tmp_path / "INbreast Release 1.0"
    names = [
        ("22678622", "61b13c59bcba149e", "R", "CC", "4c"),
        ("22678646", "61b13c59bcba149e", "R", "MLO", "1"),
        ("20587054", "b6a4f750c6df4f90", "L", "CC", "3"),
    ]
    lines = ["Patient ID ;Patient age;Laterality ;View ;Acquisition date;File Name ;ACR ;Bi-Rads "]
    for name, patient, side, view, birads in names:
        write_dicom(
            root / "AllDICOMs" / f"{name}_{patient}_MG_{side}_{view[:2]}_ANON.dcm",  # the names say ML for MLO
            laterality=side,
            view="MLO" if view == "MLO" else "CC",
            patient_id="",
        )
        lines.append(f"removed;removed;{side};{view};201001;{name};2;{birads}")
    lines += [";;;;;;;", "Total;;;;;3;;"]
    (root / "INbreast.csv").write_text("\n".join(lines) + "\n")
    (root / "AllXML").mkdir()
    rois = {
        "Images": [
            {
                "ImageIndex": 0,
                "NumberOfROIs": 2,
                "ROIs": [
                    {"Name": "Mass", "NumberOfPoints": 4, "Point_px": ["(10.5, 5)", "(20, 5)", "(20, 15)", "(10, 15)"]},
                    {"Name": "Calcification", "NumberOfPoints": 1, "Point_px": ["(30, 40)"]},
                ],
            }
        ]
    }
    (root / "AllXML" / "22678622.xml").write_bytes(plistlib.dumps(rois))
    scan = scan_dataset(root)
    assert scan.layout == "inbreast"
    got = {r.rel_path.split("/")[-1][:8]: (r.label, r.patient_id, r.view) for r in scan.images}
    assert got == {"22678622": (1, "61b13c59bcba149e", "CC"), "22678646": (0, "61b13c59bcba149e", "MLO")}
    assert len(scan.excluded) == 1 and "BI-RADS 3" in scan.excluded[0][1]
    (positive,) = [r for r in scan.images if r.label == 1]
    mass, calc = positive.lesions
    assert mass.shape_kind == "polygon" and mass.polygon[0] == (5.0, 10.5)  # (row, col) = (y, x)
    assert calc.shape_kind == "point" and calc.centre == (40.0, 30.0) and calc.lesion_type == "calcification"
    assert scan.labels_without_images == []  # the total rows are not images


def test_inbreast_reads_the_real_xls_table(tmp_path):
    """INbreast.xls as distributed: File Name and numeric BI-RADS as numbers, 4a-4c as text,
    column names with trailing spaces, a blank row and a total row at the end."""
    root = tmp_path / "INbreast Release 1.0"
    names = [
        (22678622, "61b13c59bcba149e", "R", "CC", "4c"),
        (22678646, "61b13c59bcba149e", "R", "MLO", 2.0),
        (20587054, "b6a4f750c6df4f90", "L", "CC", 3.0),
    ]
    rows: list[list[object]] = [
        ["Patient ID ", "Patient age", "Laterality ", "View ", "Acquisition date", "File Name ", "ACR ", "Bi-Rads "]
    ]
    for name, patient, side, view, birads in names:
        write_dicom(root / "AllDICOMs" / f"{name}_{patient}_MG_{side}_{view[:2]}_ANON.dcm", laterality=side, patient_id="")
        rows.append(["removed", "removed", side, view, 201001.0, float(name), 2.0, birads])
    rows += [[None] * 8, ["Total", None, None, None, None, 3.0, None, None]]
    write_xls(root / "INbreast.xls", rows)
    scan = scan_dataset(root)
    assert scan.layout == "inbreast" and "INbreast.xls" in scan.label_rule
    got = {r.rel_path.split("/")[-1][:8]: (r.label, r.patient_id, r.laterality, r.view) for r in scan.images}
    assert got == {"22678622": (1, "61b13c59bcba149e", "R", "CC"), "22678646": (0, "61b13c59bcba149e", "R", "MLO")}
    assert [why for _p, why in scan.excluded] == ["excluded by the BI-RADS mapping: BI-RADS 3"]
    assert scan.labels_without_images == []  # the blank and total rows are not images


def _stripped(ds):
    """RSNA files: Digital X-Ray SOP class, no Modality, no ViewPosition, ImageLaterality only."""
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    for name in ("Modality", "ViewPosition", "ViewCodeSequence", "BodyPartExamined", "AnatomicRegionSequence"):
        if name in ds:
            delattr(ds, name)


def test_rsna_trusts_train_csv_for_stripped_files_and_leaves_test_images_out(tmp_path):
    root = tmp_path / "rsna"
    write_dicom(root / "train_images" / "10006" / "462822612.dcm", laterality="L", edit=_stripped)
    write_dicom(root / "train_images" / "10006" / "1459541791.dcm", laterality="R", edit=_stripped)
    write_dicom(root / "test_images" / "497" / "1.dcm", edit=_stripped)
    cols = [
        "site_id",
        "patient_id",
        "image_id",
        "laterality",
        "view",
        "age",
        "cancer",
        "biopsy",
        "invasive",
        "BIRADS",
        "implant",
        "density",
        "machine_id",
        "difficult_negative_case",
    ]
    _write_csv(
        root / "train.csv",
        [
            cols,
            ["2", "10006", "462822612", "L", "MLO", "61.0", "1", "1", "1", "", "0", "", "29", "False"],
            ["2", "10006", "1459541791", "R", "CC", "61.0", "0", "0", "0", "1", "0", "B", "29", "False"],
        ],
    )
    assert scan_dataset(root, layout="folders").rejected  # outside the layout these files are refused
    scan = scan_dataset(root)
    assert scan.layout == "rsna" and not scan.rejected
    got = {r.rel_path: (r.label, r.patient_id, r.laterality, r.view) for r in scan.images}
    assert got == {
        "train_images/10006/462822612.dcm": (1, "10006", "L", "MLO"),
        "train_images/10006/1459541791.dcm": (0, "10006", "R", "CC"),
    }
    assert scan.excluded == [("test_images/497/1.dcm", "not a training image: RSNA test_images/ (unlabelled)")]
    assert scan.summary()["files_per_second"] > 0


def test_cmmd_missing_row_policy_is_a_setting(tmp_path):
    write_dicom(tmp_path / "CMMD" / "D1-0001" / "a.dcm", patient_id="D1-0001", laterality="L")
    write_dicom(tmp_path / "CMMD" / "D1-0001" / "b.dcm", patient_id="D1-0001", laterality="R")
    _write_csv(
        tmp_path / "CMMD_clinicaldata_revision.csv",
        [
            ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"],
            ["D1-0001", "L", "44", "1", "mass", "Malignant", ""],
        ],
    )
    default = scan_dataset(tmp_path)
    assert default.unlabeled == ["CMMD/D1-0001/b.dcm"] and "unlabeled" in default.label_rule
    negative = scan_dataset(tmp_path, layout_options={"cmmd_missing": "negative"})
    assert {r.rel_path: r.label for r in negative.images} == {"CMMD/D1-0001/a.dcm": 1, "CMMD/D1-0001/b.dcm": 0}
    assert negative.notes and negative.options["cmmd_missing"] == "negative"
