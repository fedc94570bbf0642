"""Hostile trees and tables: link loops, unreadable folders, conflicting label rows, shareable paths."""

from __future__ import annotations

import json
import os

import pytest
from helpers_data import write_dicom

from arfl_studio.data import LayoutError, scan_dataset
from arfl_studio.data.dicom.shareable import shareable_path
from arfl_studio.data.datasets.walk import walk_dataset

CMMD_HEADER = "ID1,LeftRight,Age,number,abnormality,classification,subtype\n"


def _cmmd(root, rows):
    (root / "CMMD_clinicaldata_revision.csv").write_text(CMMD_HEADER + "".join(r + "\n" for r in rows))


def test_symlink_loops_self_links_and_outside_links_are_skipped_with_reasons(tmp_path):
    root = tmp_path / "data"
    write_dicom(root / "D1-0001" / "1-1.dcm", patient_id="D1-0001", laterality="L")
    outside = write_dicom(tmp_path / "elsewhere" / "x.dcm", patient_id="D1-0002", laterality="L")
    _cmmd(root, ["D1-0001,L,44,1,mass,Benign,", "D1-0002,L,50,1,mass,Malignant,"])
    os.symlink(root / "D1-0001", root / "D1-0001" / "loop")  # folder link back up: a cycle
    os.symlink(root / "self.dcm", root / "self.dcm")  # a link to itself
    os.symlink("a", root / "b")  # a two-link loop
    os.symlink("b", root / "a")
    os.symlink(outside, root / "outside.dcm")
    os.symlink(tmp_path / "elsewhere", root / "outdir")
    os.symlink(root / "D1-0001" / "1-1.dcm", root / "dup.dcm")  # same image twice
    os.symlink(root / "missing.dcm", root / "broken.dcm")

    result = scan_dataset(root)  # the CMMD layout used to crash here (Path.resolve on a loop)
    assert [r.rel_path for r in result.images] == ["D1-0001/1-1.dcm"]
    reasons = {r.path: (r.category, r.reason) for r in result.rejected}
    assert reasons["self.dcm"] == ("link", "symbolic link to itself")
    assert reasons["a"][1].startswith("symbolic link loop") and reasons["b"][1].startswith("symbolic link loop")
    assert "outside the dataset folder" in reasons["outside.dcm"][1]
    assert "outside the dataset folder" in reasons["outdir"][1]
    assert "inside the dataset folder" in reasons["D1-0001/loop"][1]
    assert "inside the dataset folder" in reasons["dup.dcm"][1]
    assert "broken symbolic link" in reasons["broken.dcm"][1]
    assert result.summary()["rejected_by_category"]["link"] == 8
    assert result.labels_without_images == [("D1-0002", "L")]  # the outside image was not read


def test_csv_layout_with_a_link_loop_in_the_table_paths(tmp_path):
    write_dicom(tmp_path / "imgs" / "a.dcm", patient_id="H1")
    os.symlink(tmp_path / "imgs" / "loop", tmp_path / "imgs" / "loop")
    (tmp_path / "labels.csv").write_text("path,patient,label\nimgs/a.dcm,P1,1\nimgs/loop/x.dcm,P2,0\n")
    result = scan_dataset(tmp_path)
    assert [(r.rel_path, r.label) for r in result.images] == [("imgs/a.dcm", 1)]
    assert result.labels_without_images == [("P2", None)]


def test_unreadable_subfolders_are_listed_with_the_reason(tmp_path, monkeypatch):
    write_dicom(tmp_path / "benign" / "ok" / "a.dcm", patient_id="A")
    write_dicom(tmp_path / "benign" / "locked" / "b.dcm", patient_id="B")
    real_scandir = os.scandir
    locked = str(tmp_path / "benign" / "locked")

    def scandir(path="."):  # tests run as root, which chmod 000 does not stop
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = scan_dataset(tmp_path)
    assert [r.rel_path for r in result.images] == ["benign/ok/a.dcm"]
    [entry] = [r for r in result.rejected if r.category == "unreadable_folder"]
    assert entry.path == "benign/locked/" and "PermissionError" in entry.reason and "Permission denied" in entry.reason


def test_an_unreadable_dataset_root_is_a_clear_message(tmp_path, monkeypatch, capsys):
    from arfl_studio.cli import main

    write_dicom(tmp_path / "benign" / "a.dcm")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.path.realpath(os.fspath(path)) == os.path.realpath(tmp_path):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(LayoutError, match="cannot read the dataset folder .*Permission denied"):
        scan_dataset(tmp_path, layout="folders")
    assert main(["scan", str(tmp_path), "--layout", "folders"]) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and "Traceback" not in err


def test_conflicting_csv_rows_drop_the_image_and_name_the_rows(tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        write_dicom(tmp_path / "imgs" / f"{name}.dcm", patient_id=name.upper())
    (tmp_path / "labels.csv").write_text(
        "path,patient,label\n"
        "imgs/a.dcm,P1,1\n"  # row 2
        "imgs/a.dcm,P1,benign\n"  # row 3: another label
        "imgs/b.dcm,P2,0\n"  # row 4
        "./imgs/b.dcm,P3,0\n"  # row 5: another patient (same file, other spelling)
        "imgs/c.dcm,P4,malignant\n"
        "imgs/c.dcm,P4,1\n"  # agreeing duplicate: fine
        "imgs/d.dcm,P5,maybe\n"  # row 8
        "imgs/e.dcm,P6,2\n"  # row 9
    )
    result = scan_dataset(tmp_path)
    assert [(r.rel_path, r.patient_id, r.label) for r in result.images] == [("imgs/c.dcm", "P4", 1)]
    reasons = {r.path: (r.category, r.reason) for r in result.rejected}
    assert reasons["imgs/a.dcm"] == ("label_conflict", "labels.csv rows 2 and 3 give this image two labels (1 and benign)")
    assert reasons["imgs/b.dcm"] == ("label_conflict", "labels.csv rows 4 and 5 give this image two patients (P2 and P3)")
    assert reasons["imgs/d.dcm"][0] == "bad_label" and "'maybe'" in reasons["imgs/d.dcm"][1] and "row 8" in reasons["imgs/d.dcm"][1]
    assert reasons["imgs/e.dcm"][0] == "bad_label" and "'2'" in reasons["imgs/e.dcm"][1]
    assert result.unlabeled == []
    counts = result.summary()["rejected_by_category"]
    assert counts["label_conflict"] == 2 and counts["bad_label"] == 2


def test_cmmd_bad_classification_gets_a_reason(tmp_path):
    write_dicom(tmp_path / "D1-0001" / "1-1.dcm", patient_id="D1-0001", laterality="L")
    write_dicom(tmp_path / "D1-0001" / "1-2.dcm", patient_id="D1-0001", laterality="R")
    _cmmd(tmp_path, ["D1-0001,L,44,1,mass,Benign,", "D1-0001,R,44,1,mass,Unsure,"])
    result = scan_dataset(tmp_path)
    assert [r.laterality for r in result.images] == ["L"]
    [bad] = result.rejected
    assert bad.category == "bad_label" and "'Unsure'" in bad.reason and "row 3" in bad.reason


def test_cmmd_table_without_leftright_names_the_missing_column(tmp_path):
    write_dicom(tmp_path / "D1-0001" / "1-1.dcm", patient_id="D1-0001")
    (tmp_path / "CMMD_clinicaldata_revision.csv").write_text("ID1,Age,classification\nD1-0001,44,Benign\n")
    with pytest.raises(LayoutError, match="lacks the CMMD column LeftRight"):
        scan_dataset(tmp_path)
    (tmp_path / "CMMD_clinicaldata_revision.csv").unlink()
    (tmp_path / "clinical.csv").write_text("ID1,Age,classification\nD1-0001,44,Benign\n")  # any name
    with pytest.raises(LayoutError, match="lacks the CMMD column LeftRight"):
        scan_dataset(tmp_path)
    with pytest.raises(LayoutError, match="lacks the CMMD column LeftRight"):
        scan_dataset(tmp_path, labels=tmp_path / "clinical.csv")


def test_shareable_paths_hide_study_dates_and_uids(tmp_path):
    key = b"k" * 32
    cmmd = "CMMD/D1-0001/07-18-2010-NA-NA-7937/1.000000-NA-70244/1-1.dcm"
    shared = shareable_path(cmmd, key=key)
    parts = shared.split("/")
    assert parts[:2] == ["CMMD", "D1-0001"] and parts[-1] == "1-1.dcm"
    assert "2010" not in shared and "7937" not in shared and "70244" not in shared
    assert shareable_path(cmmd, key=key) == shared  # stable
    assert shareable_path(cmmd, key=b"o" * 32) != shared  # keyed: the date cannot be brute-forced without the key
    uid_file = shareable_path("P1/1.2.840.113619.2.55.3.60468.dcm", key=key)
    assert uid_file.startswith("P1/x") and uid_file.endswith(".dcm") and "113619" not in uid_file
    assert shareable_path("benign/20100718/a.dcm", key=key).split("/")[1] != "20100718"
    assert shareable_path("malignant/P-0001/a.dcm", key=key) == "malignant/P-0001/a.dcm"


def test_scan_json_with_shareable_paths(tmp_path, monkeypatch):
    from arfl_studio.cli import main

    monkeypatch.setenv("ARFL_STUDIO_DATA", str(tmp_path / "appdata"))
    root = tmp_path / "ds"
    write_dicom(root / "D1-0001" / "07-18-2010-NA-NA-7937" / "1.000000-NA-70244" / "1-1.dcm", patient_id="D1-0001")
    (root / "D1-0001" / "07-18-2010-NA-NA-7937" / "bad.dcm").write_bytes(b"x" * 300)
    _cmmd(root, ["D1-0001,L,44,1,mass,Benign,"])
    out = tmp_path / "scan.json"
    assert main(["scan", str(root), "--json", str(out), "--shareable-paths"]) == 0
    text = out.read_text()
    assert "2010" not in text and "7937" not in text and "70244" not in text
    doc = json.loads(text)
    assert doc["shareable_paths"] and doc["images"][0]["path"].startswith("D1-0001/x")
    assert doc["rejected"][0]["path"].endswith("/bad.dcm")
    assert (tmp_path / "appdata" / "deid-path.key").stat().st_size == 32
    again = tmp_path / "again.json"
    assert main(["scan", str(root), "--json", str(again), "--shareable-paths"]) == 0
    assert json.loads(again.read_text())["images"] == doc["images"]  # same key, same names


def test_walk_lists_files_in_name_order(tmp_path):
    for rel in ("b/2.dcm", "a/1.dcm", "a/sub/0.dcm", "c.dcm", "notes.txt", ".hidden/x.dcm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    files, skipped = walk_dataset(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in files] == ["a/1.dcm", "a/sub/0.dcm", "b/2.dcm", "c.dcm"]
    assert skipped == []


def test_a_worker_killed_by_one_file_does_not_end_the_pass(tmp_path):
    from helpers_data import die_on_crash_files

    from arfl_studio.data.datasets.file_jobs import run_jobs

    names = [f"{i:02d}.dcm" for i in range(9)]
    names[4] = "crash.dcm"
    seen = []
    results, cancelled = run_jobs(
        die_on_crash_files,
        [tmp_path / n for n in names],
        workers=2,
        chunk=2,
        progress=lambda d, t: seen.append(d),
        crash_result=lambda p: (p, "crashed"),
    )
    assert not cancelled
    assert [r[1] for r in results] == ["fine"] * 4 + ["crashed"] + ["fine"] * 4
    assert [r[0] for r in results] == [str(tmp_path / n) for n in names]
    assert seen[-1] == len(names)


def test_labels_outside_the_layout_vocabulary_are_refused_listing_the_values_seen(tmp_path):
    """Issue 26 item 11: a label TRUE was read as malignant. Only the layout's documented words
    count (labels.LABEL_VOCABULARY); other values refuse the image, naming what the table holds."""
    for name in ("a", "b", "c"):
        write_dicom(tmp_path / "imgs" / f"{name}.dcm", patient_id=name.upper())
    (tmp_path / "labels.csv").write_text("path,patient,label\nimgs/a.dcm,P1,TRUE\nimgs/b.dcm,P2,FALSE\nimgs/c.dcm,P3,malignant\n")
    result = scan_dataset(tmp_path)
    assert [(r.rel_path, r.label) for r in result.images] == [("imgs/c.dcm", 1)]
    reasons = {r.path: r for r in result.rejected}
    assert {reasons[p].category for p in ("imgs/a.dcm", "imgs/b.dcm")} == {"bad_label"}
    reason = reasons["imgs/a.dcm"].reason
    assert "'TRUE'" in reason and "row 2" in reason and "'FALSE'" in reason and "'malignant'" in reason
    assert "benign" in reason  # and which words are accepted
    # the mapping a config states
    mapped = scan_dataset(tmp_path, label_map={"true": 1, "False": "benign"})
    assert sorted((r.rel_path, r.label) for r in mapped.images) == [("imgs/a.dcm", 1), ("imgs/b.dcm", 0), ("imgs/c.dcm", 1)]
    with pytest.raises(LayoutError, match="map each word to 0"):
        scan_dataset(tmp_path, label_map={"true": "yes"})


def test_cmmd_and_folder_layouts_keep_to_their_own_words(tmp_path):
    write_dicom(tmp_path / "D1-0001" / "1-1.dcm", patient_id="D1-0001", laterality="L")
    write_dicom(tmp_path / "D1-0001" / "1-2.dcm", patient_id="D1-0001", laterality="R")
    _cmmd(tmp_path, ["D1-0001,L,44,1,mass,1,", "D1-0001,R,44,1,mass,Malignant,"])
    result = scan_dataset(tmp_path)
    assert [r.laterality for r in result.images] == ["R"]  # "1" is not a CMMD classification
    assert "'1'" in result.rejected[0].reason and "'Malignant'" in result.rejected[0].reason
    folders = tmp_path / "folders"
    write_dicom(folders / "Malignant" / "x.dcm", patient_id="X")
    write_dicom(folders / "positive" / "y.dcm", patient_id="Y")
    scan = scan_dataset(folders, layout="folders")
    assert [(r.rel_path, r.label) for r in scan.images] == [("Malignant/x.dcm", 1)] and scan.unlabeled == ["positive/y.dcm"]
    mapped = scan_dataset(folders, layout="folders", label_map={"positive": 1})
    assert sorted(r.rel_path for r in mapped.images) == ["Malignant/x.dcm", "positive/y.dcm"]


def test_a_config_label_map_reaches_the_scan_and_a_bad_one_is_refused():
    from arfl_studio.experiments import load_config
    from arfl_studio.training.methods import SettingError

    config = load_config({"data": {"root": "/nowhere", "label_map": {"TRUE": 1, "FALSE": 0}}, "methods": ["A"]})
    assert config.data.label_map == {"TRUE": 1, "FALSE": 0}
    with pytest.raises(SettingError, match=r"\[data\] label_map maps 'TRUE' to 2"):
        load_config({"data": {"root": "/nowhere", "label_map": {"TRUE": 2}}, "methods": ["A"]})


def test_a_csv_field_over_the_csv_limit_is_named_not_a_traceback(tmp_path):
    """Issue 26 item 4: csv.Error from a 131,073-character field."""
    write_dicom(tmp_path / "imgs" / "a.dcm", patient_id="A")
    (tmp_path / "labels.csv").write_text("path,patient,label\nimgs/a.dcm,P1,1\nimgs/b.dcm,\"" + "x" * 131_073 + "\",0\n")
    with pytest.raises(LayoutError, match=r"cannot read labels.csv \(after line 2\): field larger than field limit"):
        scan_dataset(tmp_path)


def test_a_cache_dir_that_is_a_file_is_named(tmp_path):
    from arfl_studio.data.preprocess.cache import CacheFolderError, PreprocessCache
    from arfl_studio.experiments import load_config
    from arfl_studio.training.methods import SettingError

    blocker = tmp_path / "cache"
    blocker.write_text("the user's file")
    with pytest.raises(CacheFolderError, match="is a file, not a folder"):
        PreprocessCache(blocker)
    with pytest.raises(SettingError, match=r"\[data\] cache_dir = .* is a file, not a folder"):
        load_config({"data": {"demo": True, "cache_dir": str(blocker)}, "methods": ["A"]})
    assert blocker.read_text() == "the user's file"
