"""The Viewer's window/level in the image's own units (issue 25 item 12): a DICOM with a rescale and
two window pairs opens at its first window, the fields and the readout show modality values, every
header window is a preset, and typing the second window's centre and width shows exactly it."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from synthetic_dicom import write_mammogram

from arfl_studio.gui.panes import viewer_window as window_controls
from arfl_studio.gui.panes.viewer_pane import ViewerPane

from .conftest import wait_task

STORED = np.linspace(0, 4095, 64 * 48).reshape(64, 48).astype(np.uint16)


def test_window_fields_and_presets_in_modality_units(qtbot, tmp_path):
    path = write_mammogram(
        tmp_path / "w.dcm",
        STORED,
        RescaleSlope="2",
        RescaleIntercept="-1000",
        WindowCenter=[1000, 3000],
        WindowWidth=[2001, 6001],
        WindowCenterWidthExplanation=["SOFT", "WIDE"],
    )
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1100, 700)
    pane.show()
    wait_task(qtbot, pane.open_files([str(path)]))
    view = pane.hanging["LCC"]
    assert pane.stack.currentIndex() == 1 and view.gray is not None
    assert view.wl_label.text() == "W 2001  L 1000"
    assert (pane.centre_spin.value(), pane.width_spin.value()) == (1000, 2001)
    names = [pane.preset_box.itemText(i) for i in range(pane.preset_box.count())]
    assert names[:2] == ["SOFT: C 1000 W 2001", "WIDE: C 3000 W 6001"] and "Full range" in names
    # typing the second window gives exactly its preset (and the readout says so)
    pane.width_spin.setValue(6001)
    pane.centre_spin.setValue(3000)
    assert view.levels == pytest.approx(view.presets["WIDE: C 3000 W 6001"])
    assert view.wl_label.text() == "W 6001  L 3000"
    window_controls.apply_preset(pane, "SOFT: C 1000 W 2001")
    assert (pane.centre_spin.value(), pane.width_spin.value()) == pytest.approx((1000, 2001))
    # the pixel readout is the modality value: stored * 2 - 1000
    sy, sx = view.pixel_size()
    text = view.readout_text(QPointF(20.5 * sx, 30.5 * sy))
    assert "[row 30, col 20]" in text and f"value {int(STORED[30, 20]) * 2 - 1000}" in text
