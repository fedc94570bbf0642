"""scan_dataset: CMMD join, labels CSV, folder-per-class, bad files, no PHI, the CLI."""

from __future__ import annotations

import json

import pytest
from helpers_data import cancel_at, write_dicom

from arfl_studio.data import LayoutError, scan_dataset


def _cmmd_tree(root):
    cmmd = root / "CMMD"
    # folder names are not trusted: the patient folder name is wrong on purpose
    write_dicom(cmmd / "D1-0001" / "s" / "x" / "1-1.dcm", patient_id="D1-0001", laterality="L", view="CC")
    write_dicom(cmmd / "D1-0001" / "s" / "x" / "1-2.dcm", patient_id="D1-0001", laterality="L", view="MLO")
    write_dicom(cmmd / "D1-0001" / "s" / "x" / "1-3", patient_id="D1-0001", laterality="R", view="CC")
    write_dicom(cmmd / "wrong-name" / "1-1.dicom", patient_id="D1-0002", laterality="R", view="CC")
    write_dicom(cmmd / "D1-0003" / "1-1.dcm", patient_id="D1-0003", laterality="L", view="MLO")  # no row
    (cmmd / "D1-0002" / "empty.dcm").parent.mkdir(parents=True, exist_ok=True)
    (cmmd / "D1-0002" / "empty.dcm").write_bytes(b"")
    (cmmd / "D1-0002" / "notes").write_text("not a DICOM file, just notes" * 20)
    return [
        ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"],
        ["D1-0001", "L", 44, 2, "mass", "Benign", ""],
        ["D1-0001", "R", 44, 1, "calcification", "Malignant", "Luminal A"],
        ["D1-0002", "R", 61, 1, "mass", "Malignant", "Luminal B"],
        ["D1-0009", "L", 52, 2, "mass", "Benign", ""],  # no image
    ]


def _write_xlsx(path, rows):
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)


@pytest.mark.parametrize("table", ["xlsx", "csv"])
def test_cmmd_layout_joins_on_patient_and_side(tmp_path, table):
    rows = _cmmd_tree(tmp_path)
    if table == "xlsx":
        _write_xlsx(tmp_path / "CMMD_clinicaldata_revision.xlsx", rows)
    else:
        (tmp_path / "clinical.csv").write_text("\n".join(",".join(map(str, r)) for r in rows) + "\n")
    result = scan_dataset(tmp_path)
    assert result.layout == "cmmd"
    got = {(r.patient_id, r.laterality, r.view): r.label for r in result.images}
    assert got == {
        ("D1-0001", "L", "CC"): 0,
        ("D1-0001", "L", "MLO"): 0,
        ("D1-0001", "R", "CC"): 1,  # same patient, other breast, other label
        ("D1-0002", "R", "CC"): 1,
    }
    assert result.unlabeled == ["CMMD/D1-0003/1-1.dcm"]
    assert result.labels_without_images == [("D1-0009", "L")]
    reasons = dict(result.rejected)
    assert reasons == {"CMMD/D1-0002/empty.dcm": "empty file", "CMMD/D1-0002/notes": "not a DICOM file"}
    s = result.summary()
    assert s["images"] == 4 and s["patients"] == 2 and s["by_label"] == {"benign": 2, "malignant": 2}
    doc = result.to_json()
    assert {"images", "patients", "rejected", "unlabeled", "labels_without_images", "counts"} <= set(doc)
    assert doc["images"][0].keys() >= {"path", "patient_id", "laterality", "view", "label"}
    assert not doc["images"][0]["path"].startswith("/")


def test_labels_csv_and_folder_per_class_layouts(tmp_path):
    a = write_dicom(tmp_path / "imgs" / "a.dcm", patient_id="H1")
    write_dicom(tmp_path / "imgs" / "b", patient_id="H2", laterality="R")
    write_dicom(tmp_path / "imgs" / "c.dcm", patient_id="H3")  # not in the CSV
    (tmp_path / "my.csv").write_text("file,pid,dx\nimgs/a.dcm,P1,malignant\nimgs/b,P2,0\nimgs/gone.dcm,P4,1\n")
    result = scan_dataset(tmp_path, labels=tmp_path / "my.csv", path_column="file", patient_column="pid", label_column="dx")
    assert result.layout == "csv"
    assert {(r.rel_path, r.patient_id, r.label) for r in result.images} == {("imgs/a.dcm", "P1", 1), ("imgs/b", "P2", 0)}
    assert result.unlabeled == ["imgs/c.dcm"]
    assert result.labels_without_images == [("P4", None)]
    with pytest.raises(LayoutError, match="columns"):
        scan_dataset(tmp_path, labels=tmp_path / "my.csv")  # default column names are absent
    assert a.exists()

    folders = tmp_path / "f"
    write_dicom(folders / "Benign" / "x.dcm", patient_id="Q1")
    write_dicom(folders / "malignant" / "sub" / "y.dcm", patient_id="Q2")
    write_dicom(folders / "other" / "z.dcm", patient_id="Q3")
    result = scan_dataset(folders)
    assert result.layout == "folders"
    assert {(r.patient_id, r.label) for r in result.images} == {("Q1", 0), ("Q2", 1)}
    assert result.unlabeled == ["other/z.dcm"]


def test_auto_detection_fails_with_advice(tmp_path):
    write_dicom(tmp_path / "a.dcm")
    with pytest.raises(LayoutError, match="--labels"):
        scan_dataset(tmp_path)


def test_scan_over_pydicom_test_files_never_raises():
    from pydicom.data import get_testdata_file

    root = __import__("pathlib").Path(get_testdata_file("CT_small.dcm")).parent
    result = scan_dataset(root, layout="folders")
    assert result.files_seen > 100
    assert len(result.rejected) + len(result.unlabeled) + len(result.images) == result.files_seen
    assert all(reason for _, reason in result.rejected)


def test_cancel_and_progress(tmp_path):
    for i in range(6):
        write_dicom(tmp_path / "benign" / f"{i}.dcm", patient_id=f"P{i}")
    cancel, seen, progress = cancel_at(2)
    result = scan_dataset(tmp_path, progress=progress, cancel=cancel)
    assert result.cancelled and len(result.images) == 2 and seen[0] == (0, 6)


def test_scan_cli_writes_json_and_never_phi(tmp_path, capsys):
    from arfl_studio.cli import main

    def phi(ds):
        ds.PatientName = "Doe^Janet"
        ds.PatientBirthDate = "19610203"

    write_dicom(tmp_path / "benign" / "a.dcm", patient_id="ANON-1", edit=phi)
    (tmp_path / "benign" / "bad.dcm").write_bytes(b"\0" * 10)
    out = tmp_path / "scan.json"
    assert main(["scan", str(tmp_path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    text = out.read_text()
    for secret in ("Doe", "Janet", "19610203"):
        assert secret not in printed and secret not in text
    doc = json.loads(text)
    assert doc["images"][0]["patient_id"] == "ANON-1"
    assert doc["rejected"] == [{"path": "benign/bad.dcm", "reason": "not a DICOM file", "category": "unreadable"}]
    assert doc["counts"]["rejected_by_category"]["unreadable"] == 1
