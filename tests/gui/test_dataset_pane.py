"""Dataset pane: scan in a worker, summary, images with thumbnails, rejected files, fold preview."""

import shutil

from arfl_studio.gui.panes.dataset_pane import DatasetPane

from .conftest import wait_task


def test_scan_fills_summary_tables_and_fold_preview(qtbot, demo_dir):
    pane = DatasetPane()
    qtbot.addWidget(pane)
    pane.fold_spin.setValue(2)
    with qtbot.waitSignal(pane.scanned, timeout=60_000) as blocker:
        handle = pane.load(demo_dir)
    scan = blocker.args[0]
    wait_task(qtbot, handle)
    assert pane.layout_box.currentText() == "cmmd"
    assert pane.image_model.rowCount() == len(scan.images) > 0
    assert pane.lists.tabText(0) == f"Images ({len(scan.images)})"
    labels = {pane.summary_form.itemAt(i, pane.summary_form.ItemRole.LabelRole).widget().text()
              for i in range(pane.summary_form.rowCount())}
    assert {"Patients:", "Images:", "Malignant / benign:", "Views:", "Sides:"} <= labels
    qtbot.waitUntil(lambda: len(pane.image_model.thumbnails) == min(len(scan.images), 64), timeout=30_000)
    assert pane.fold_model.rowCount() == 2
    assert sum(r["images"] for r in pane.fold_model.rows) == len(scan.images)
    assert sum(r["patients"] for r in pane.fold_model.rows) == len(scan.patients)
    pane.fold_spin.setValue(3)  # preview follows the fold count
    assert pane.fold_model.rowCount() == 3


def test_rejected_files_are_listed_with_reasons(qtbot, demo_dir, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(demo_dir, root)
    bad = next(root.rglob("*.dcm"))
    bad.write_bytes(b"not a dicom file at all")
    pane = DatasetPane()
    qtbot.addWidget(pane)
    with qtbot.waitSignal(pane.scanned, timeout=60_000):
        handle = pane.load(root)
    wait_task(qtbot, handle)
    reasons = {r["path"]: r["reason"] for r in pane.rejected_model.rows}
    rel = bad.relative_to(root).as_posix()
    assert rel in reasons and reasons[rel]
    assert pane.lists.tabText(1).startswith("Rejected (")


def test_scan_error_opens_a_dialog_not_a_freeze(qtbot, tmp_path):
    from arfl_studio.gui.dialogs import last_error

    pane = DatasetPane()
    qtbot.addWidget(pane)
    handle = pane.load(tmp_path / "does-not-exist")
    wait_task(qtbot, handle)
    assert handle.outcome == "failed"
    qtbot.waitUntil(lambda: last_error() is not None)
    assert "does-not-exist" in last_error().text() or "Scan failed" in pane.root_label.text()


def test_dropping_a_folder_on_the_window_opens_it(qtbot, window, demo_dir):
    from arfl_studio.gui import settings_store

    with qtbot.waitSignal(window.dataset_pane.scanned, timeout=60_000):
        window.open_paths([str(demo_dir)])
    wait_task(qtbot, window.dataset_pane.task)
    assert settings_store.recent_folders()[0] == str(demo_dir)
    assert window.training_pane.data_section["root"] == str(demo_dir)
