"""Viewer: a load that fails leaves nothing of the previous patient on screen and says why in place."""

import dataclasses

from arfl_studio.gui.panes.viewer_pane import ViewerPane

from .conftest import wait_task


def test_a_failed_load_clears_the_previous_patient_and_says_why(qtbot, demo_dir, tmp_path):
    from arfl_studio.data import scan_dataset

    scan = scan_dataset(demo_dir)
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1024, 700)
    pane.show()
    good = scan.images[0]
    with qtbot.waitSignal(pane.views_ready, timeout=60_000):
        wait_task(qtbot, pane.show_record(good, scan.images))
    assert any(v.gray is not None for v in pane.all_views()) and pane.tag_model.rows
    broken = tmp_path / "broken.dcm"
    broken.write_bytes(good.path.read_bytes()[:2000])  # a truncated copy: the header parses, the pixels do not
    bad = dataclasses.replace(good, path=broken, patient_id="OTHER-PATIENT")
    handle = wait_task(qtbot, pane.show_record(bad, [bad]))
    assert handle.outcome == "failed"
    assert all(v.gray is None for v in pane.all_views())  # no image of the previous patient
    assert pane.tag_model.rows == [] and pane.tags == []  # nor its header
    assert all(not v.wl_label.text() and not v.marker.text() for v in pane.all_views())
    shown = [v.caption.text() for v in pane.current_views()]
    assert all("Could not load" in text for text in shown), shown
    assert good.patient_id not in pane.prediction.text() and "Could not load" in pane.prediction.text()
