"""Dataset pane: scan in a worker, state after a failed open, counts that agree, lazy
off-thread thumbnails, the crop box, the verify option, the fold preview."""

import shutil
import threading
from pathlib import Path

import pydicom
import pytest

from arfl_studio.gui.panes.dataset_pane import DatasetPane

from .conftest import wait_task


def _pane(qtbot, tmp_path, show=False):
    pane = DatasetPane(thumbnail_cache=tmp_path / "cache")
    qtbot.addWidget(pane)
    if show:
        pane.resize(1000, 640)
        pane.show()
    return pane


def _open(qtbot, pane, root, labels=None):
    with qtbot.waitSignal(pane.scanned, timeout=60_000) as blocker:
        handle = pane.load(root, labels)
    wait_task(qtbot, handle)
    return blocker.args[0]


def _idle(qtbot, pane):
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)


def test_scan_fills_summary_tables_and_fold_preview(qtbot, demo_dir, tmp_path):
    pane = _pane(qtbot, tmp_path)
    pane.fold_spin.setValue(2)
    scan = _open(qtbot, pane, demo_dir)
    assert pane.layout_box.currentText() == "cmmd"
    assert pane.image_model.rowCount() == len(scan.images) > 0
    assert pane.lists.tabText(0) == f"Images ({len(scan.images)})"
    labels = {
        pane.summary_form.itemAt(i, pane.summary_form.ItemRole.LabelRole).widget().text() for i in range(pane.summary_form.rowCount())
    }
    assert {
        "Patients:",
        "Images:",
        "Malignant / benign:",
        "Views:",
        "Sides:",
        "Rejected files:",
        "Unlabeled images:",
        "Label rows without images:",
    } <= labels
    assert pane.fold_model.rowCount() == 2
    assert sum(r["images"] for r in pane.fold_model.rows) == len(scan.images)
    assert sum(r["patients"] for r in pane.fold_model.rows) == len(scan.patients)
    pane.fold_spin.setValue(3)  # preview follows the fold count (split in a worker)
    qtbot.waitUntil(lambda: pane.fold_model.rowCount() == 3, timeout=30_000)
    assert sum(r["images"] for r in pane.fold_model.rows) == len(scan.images)
    _idle(qtbot, pane)


# ---------------------------------------------------------------- a failed open


def test_failed_open_keeps_the_dataset_and_speaks_gui(qtbot, window, demo_dir, tmp_path):
    from arfl_studio.gui import settings_store
    from arfl_studio.gui.dialogs import last_error

    pane = window.dataset_pane
    scan = _open(qtbot, pane, demo_dir)
    rows = pane.image_model.rowCount()
    bad = tmp_path / "no-layout"
    (bad / "sub").mkdir(parents=True)
    shutil.copy(next(Path(demo_dir).rglob("*.dcm")), bad / "sub" / "x.dcm")  # images but no labels anywhere
    wait_task(qtbot, pane.load(bad))
    qtbot.waitUntil(lambda: last_error() is not None)
    text = last_error().text()
    assert str(bad) in text
    assert "--" not in text and "File → Open labels file…" in text  # a GUI action, not a command-line flag
    # the dataset shown, Training's target and the recent list are those of the folder that worked
    assert pane.scan is scan and pane.image_model.rowCount() == rows
    assert str(scan.root) in pane.root_label.text()
    assert window.training_pane.data_section["root"] == str(scan.root)
    assert str(bad) not in settings_store.recent_folders()
    assert settings_store.recent_folders()[0] == str(demo_dir)
    # a labels file picked now applies to the folder shown, not to the one that failed
    with qtbot.waitSignal(pane.scanned, timeout=60_000) as blocker:
        handle = pane.apply_labels(next(Path(demo_dir).glob("*.xlsx")))
    wait_task(qtbot, handle)
    assert blocker.args[0].root == scan.root and pane.image_model.rowCount() == rows
    _idle(qtbot, pane)


def test_labels_that_label_nothing_do_not_replace_the_dataset(qtbot, demo_dir, tmp_path):
    from arfl_studio.gui.dialogs import last_error

    pane = _pane(qtbot, tmp_path)
    scan = _open(qtbot, pane, demo_dir)
    labels = tmp_path / "other.csv"
    labels.write_text("path,patient,label\nnowhere/1.dcm,P1,1\n", encoding="utf-8")
    handle = pane.apply_labels(labels)
    wait_task(qtbot, handle)
    qtbot.waitUntil(lambda: last_error() is not None)
    assert "no labelled images" in last_error().text()
    assert pane.scan is scan and pane.lists.tabText(0) == f"Images ({len(scan.images)})"
    assert pane.labels_path is None  # the labels in use did not change
    _idle(qtbot, pane)


def test_scan_error_opens_a_dialog_not_a_freeze(qtbot, tmp_path):
    from arfl_studio.gui.dialogs import last_error

    pane = _pane(qtbot, tmp_path)
    handle = pane.load(tmp_path / "does-not-exist")
    wait_task(qtbot, handle)
    assert handle.outcome == "failed"
    qtbot.waitUntil(lambda: last_error() is not None)
    assert "does-not-exist" in last_error().text() and pane.scan is None


# ---------------------------------------------------------------- counts


@pytest.fixture
def flawed_dir(demo_dir, tmp_path):
    """The demo with one unreadable file, one image of an unknown patient, one patient's images gone."""
    root = tmp_path / "flawed"
    shutil.copytree(demo_dir, root)
    files = sorted(root.rglob("*.dcm"))
    files[0].write_bytes(b"not a dicom file at all")
    ds = pydicom.dcmread(files[1])
    ds.PatientID = "D9-9999"
    ds.save_as(files[1])
    gone = files[-1].parent
    shutil.rmtree(gone)
    return root


def test_counts_agree_in_summary_tabs_and_status_bar(qtbot, window, flawed_dir):
    pane = window.dataset_pane
    scan = _open(qtbot, pane, flawed_dir)
    rejected, unlabeled, orphans = len(scan.rejected), len(scan.unlabeled), len(scan.labels_without_images)
    assert rejected >= 1 and unlabeled >= 1 and orphans >= 1  # the phantom has all three
    assert pane.summary_value("Rejected files").split()[0] == str(rejected)
    assert pane.summary_value("Unlabeled images") == str(unlabeled)
    assert pane.summary_value("Label rows without images") == str(orphans)
    assert pane.summary_value("Images") == str(len(scan.images))
    tabs = [pane.lists.tabText(i) for i in range(pane.lists.count())]
    assert tabs == [
        f"Images ({len(scan.images)})",
        f"Rejected ({rejected})",
        f"Unlabeled ({unlabeled})",
        f"Labels without images ({orphans})",
    ]
    assert pane.rejected_model.rowCount() == rejected and pane.unlabeled_model.rowCount() == unlabeled
    assert {(r["patient_id"], r["side"]) for r in pane.orphans_model.rows} == {(p, s or "-") for p, s in scan.labels_without_images}
    status = window.statusBar().currentMessage()
    assert f"{len(scan.images)} images" in status and f"{rejected} rejected" in status
    assert f"{unlabeled} unlabeled" in status and f"{orphans} label rows without images" in status
    _idle(qtbot, pane)


def test_fold_preview_and_training_folds_are_one_setting(qtbot, window, demo_dir):
    d, form = window.dataset_pane, window.training_pane.form
    assert d.fold_spin.value() == form.folds_spin.value()
    d.fold_spin.setValue(4)
    assert form.folds_spin.value() == 4
    form.folds_spin.setValue(3)
    assert d.fold_spin.value() == 3
    scan = _open(qtbot, d, demo_dir)
    assert d.fold_model.rowCount() == 3
    assert form.config_dict(window.training_pane.data_section)["cv"]["folds"] == 3
    assert scan is d.scan
    _idle(qtbot, d)
    # Training's split is previewed too: the demo data has no official split, and says so
    form.split_box.setCurrentText("official")
    qtbot.waitUntil(lambda: d.fold_note.text().startswith("No split:"), timeout=30_000)
    assert "no official train/test split" in d.fold_note.text() and d.fold_model.rowCount() == 0
    assert not d.fold_spin.isEnabled()
    form.split_box.setCurrentText("patient-cv")
    qtbot.waitUntil(lambda: d.fold_model.rowCount() == 3, timeout=30_000)
    assert d.fold_spin.isEnabled()
    _idle(qtbot, d)


def test_rejected_files_are_listed_with_one_line_reasons(qtbot, flawed_dir, tmp_path):
    pane = _pane(qtbot, tmp_path)
    _open(qtbot, pane, flawed_dir)
    reasons = [r["reason"] for r in pane.rejected_model.rows]
    assert reasons and all(r and "\n" not in r for r in reasons)
    assert "(unreadable: 1" in pane.summary_value("Rejected files")  # counted by kind
    assert [r["category"] for r in pane.rejected_model.rows] == ["unreadable"]
    _idle(qtbot, pane)


# ---------------------------------------------------------------- thumbnails


def test_thumbnails_are_made_off_the_ui_thread_for_rows_in_view(qtbot, demo_dir, tmp_path, monkeypatch):
    from arfl_studio.gui import thumbnails

    root = tmp_path / "many"
    for i in range(4):  # 4 copies of the demo: more rows than the list shows
        shutil.copytree(demo_dir, root / f"copy{i}")
    (root / "CMMD_clinicaldata_revision.xlsx").write_bytes(next(Path(demo_dir).glob("*.xlsx")).read_bytes())
    threads = []
    real = thumbnails.make_thumbnail

    def spy(path, cache=None):
        threads.append(threading.current_thread() is threading.main_thread())
        return real(path, cache)

    monkeypatch.setattr(thumbnails, "make_thumbnail", spy)
    pane = _pane(qtbot, tmp_path, show=True)
    scan = _open(qtbot, pane, root)
    n = len(scan.images)
    visible = pane.visible_rows()
    assert 0 < len(visible) < n
    qtbot.waitUntil(lambda: set(visible) <= set(pane.image_model.thumbnails), timeout=60_000)
    _idle(qtbot, pane)
    assert threads and not any(threads), "a thumbnail was made on the UI thread"
    assert n - 1 not in pane.image_model.thumbnails  # rows out of view wait until they are scrolled to
    pane.image_table.scrollToBottom()
    qtbot.waitUntil(lambda: n - 1 in pane.image_model.thumbnails, timeout=60_000)
    _idle(qtbot, pane)
    assert len(pane.image_model.thumbnails) < n or n <= 2 * len(visible)
    assert any((tmp_path / "cache").rglob("*.npy")), "thumbnails go through the preprocessing cache"


# ---------------------------------------------------------------- crop box, verify


def test_selected_image_shows_the_crop_box_training_uses(qtbot, demo_dir, tmp_path):
    from arfl_studio.data import PreprocessSettings, read_mammogram
    from arfl_studio.data.preprocess.transform import compute_geometry

    pane = _pane(qtbot, tmp_path, show=True)
    scan = _open(qtbot, pane, demo_dir)
    pane.select_row(2)
    qtbot.waitUntil(lambda: pane.crop_preview.native_box() is not None, timeout=30_000)
    _idle(qtbot, pane)
    pixels = read_mammogram(scan.images[2].path).pixels
    expected = compute_geometry(pixels, PreprocessSettings()).native_box()
    assert pane.crop_preview.native_box() == tuple(expected)
    assert scan.images[2].path.name in pane.crop_preview.caption.text()


def test_verify_option_rejects_files_that_do_not_decode(qtbot, demo_dir, tmp_path):
    root = tmp_path / "truncated"
    shutil.copytree(demo_dir, root)
    pane = _pane(qtbot, tmp_path)
    plain = _open(qtbot, pane, root)
    victim = plain.images[0]
    data = victim.path.read_bytes()
    victim.path.write_bytes(data[: len(data) - 2000])  # the header still reads; the pixels do not
    again = _open(qtbot, pane, root)
    assert victim.rel_path in {r.rel_path for r in again.images}  # a header-only scan cannot know
    pane.verify_box.setChecked(True)
    verified = _open(qtbot, pane, root)
    assert victim.rel_path not in {r.rel_path for r in verified.images}
    assert victim.rel_path in {r["path"] for r in pane.rejected_model.rows}
    assert len(verified.images) == len(again.images) - 1
    _idle(qtbot, pane)


def test_dropping_a_folder_on_the_window_opens_it(qtbot, window, demo_dir):
    from arfl_studio.gui import settings_store

    with qtbot.waitSignal(window.dataset_pane.scanned, timeout=60_000):
        window.open_paths([str(demo_dir)])
    wait_task(qtbot, window.dataset_pane.task)
    assert settings_store.recent_folders()[0] == str(demo_dir)
    assert window.training_pane.data_section["root"] == str(demo_dir)
    _idle(qtbot, window.dataset_pane)


# ---------------------------------------------------------------- lesion marks


def test_lesion_counts_in_summary_and_per_image_column(qtbot, tmp_path):
    import csv

    from lesion_phantom import write_phantom

    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    labels, lesions = [["path", "patient", "label"]], [["path", "lesion_type", "pathology", "x", "y", "radius"]]
    for p, side in ((0, "L"), (0, "R"), (1, "L"), (1, "R")):
        rel = f"images/p{p}_{side}.dcm"
        write_phantom(root / rel, side, "CC", shape=(120, 90))
        labels.append([rel, f"W{p}", "malignant" if p else "benign"])
    lesions += [
        ["images/p1_L.dcm", "SPIC", "M", "30", "40", "8"],
        ["images/p1_L.dcm", "CALC", "M", "", "", ""],
        ["images/p0_R.dcm", "CIRC", "B", "50", "60", "5"],
    ]
    for name, rows in (("labels.csv", labels), ("lesions.csv", lesions)):
        with open(root / name, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    pane = _pane(qtbot, tmp_path)
    scan = _open(qtbot, pane, root, str(root / "labels.csv"))
    summary = pane.summary_value("Lesions")
    assert summary.startswith("3 on 2 images") and "1 without a position" in summary
    assert "mass: 2" in summary and "calcification: 1" in summary and "malignant: 2" in summary
    column = [k for k, _ in pane.image_model.columns].index("lesions")
    cells = {scan.images[i].rel_path: pane.image_model.index(i, column).data() for i in range(len(scan.images))}
    assert cells == {"images/p0_L.dcm": "", "images/p0_R.dcm": "1", "images/p1_L.dcm": "2 (1 unplaced)", "images/p1_R.dcm": ""}


def test_dataset_without_lesion_marks_says_none(qtbot, demo_dir, tmp_path):
    pane = _pane(qtbot, tmp_path)
    _open(qtbot, pane, demo_dir)
    assert pane.summary_value("Lesions").startswith("none")
