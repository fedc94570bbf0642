"""The layout at 1024×700: key widgets fully visible without scrolling, the run path readable,
p-value columns not clipped. Screenshots of each pane are taken at that size."""

from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QImage

from .conftest import wait_task

SIZE = (1024, 700)


def fully_visible(widget) -> bool:
    """Shown, and no part clipped by an ancestor (scroll area viewport, splitter, window edge)."""
    if not widget.isVisible():
        return False
    top = widget.window()

    def rect_of(w):
        return QRect(w.mapTo(top, QPoint(0, 0)), w.size()) if w is not top else top.rect()

    rect = rect_of(widget)
    parent = widget.parentWidget()
    while parent is not None:
        if not rect_of(parent).contains(rect):
            return False
        if parent is top:
            return True
        parent = parent.parentWidget()
    return True


def test_key_widgets_visible_at_1024x700(qtbot, window, demo_dir, trained_run, tmp_path):
    window.resize(*SIZE)
    d = window.dataset_pane
    with qtbot.waitSignal(d.scanned, timeout=60_000):
        d.load(demo_dir)
    wait_task(qtbot, d.task)
    d.select_row(0)
    qtbot.waitUntil(lambda: d.crop_preview.native_box() is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not d.busy(), timeout=60_000)
    assert window.open_run(trained_run) is not None
    shots = {}
    for index, name in enumerate(("dataset", "training", "attack", "viewer")):
        window.tabs.setCurrentIndex(index)
        qtbot.wait(200)
        path = tmp_path / f"{name}.png"
        assert window.grab().save(str(path))
        shots[name] = QImage(str(path))
        if name == "dataset":
            for w in (d.open_button, d.labels_button, d.verify_box, d.fold_spin, d.crop_preview.graphics):
                assert fully_visible(w), w
            assert d.image_table.isVisible() and d.image_table.viewport().height() > 100
            fold = d.fold_table
            right = fold.horizontalHeader().sectionViewportPosition(fold.model().columnCount() - 1) + fold.columnWidth(
                fold.model().columnCount() - 1
            )
            assert right <= fold.viewport().width() + 1, "the fold preview's columns are cut off"
        elif name == "training":
            t = window.training_pane
            for w in (
                t.start_button,
                t.stop_button,
                window.resume_button,
                window.queue_button,
                t.form.eval_eps_spin,
                t.form.folds_spin,
                t.form.epochs_spin,
                t.form.presets["I"],
            ):
                assert fully_visible(w), w
            assert fully_visible(t.form.run_box), "the run settings need scrolling"
            table, header = t.table, t.table.horizontalHeader()
            names = [table.model().headerData(i, Qt.Orientation.Horizontal) for i in range(header.count())]
            p_columns = [i for i, n in enumerate(names) if str(n).startswith("p ")]
            assert p_columns, names
            for i in p_columns:
                assert header.sectionViewportPosition(i) + header.sectionSize(i) <= table.viewport().width() + 1, f"{names[i]} is clipped"
                assert header.sectionSize(i) >= table.sizeHintForColumn(i), f"{names[i]}'s values are cut"
            metrics = t.status_label.fontMetrics()
            assert metrics.horizontalAdvance(str(trained_run)) <= t.status_label.width()
        elif name == "attack":
            a = window.attack_pane  # its settings column is the attack pane's own (issue 13.8 added rows)
            assert a.run_edit.isVisible() and a.run_button.isVisible() and a.run_edit.text() == str(trained_run)
            assert a.run_edit.toolTip() == str(trained_run)  # the whole path, however narrow the field
        else:
            v = window.viewer_pane
            assert fully_visible(v.view_a) and fully_visible(v.view_b) and fully_visible(v.overlay_box)
            for w in (v.centre_spin, v.width_spin, v.view_strip, v.tag_table):  # W/L fields, views strip, header
                assert fully_visible(w), f"{w.objectName() or w} is cut off"
            assert v.minimumSizeHint().width() <= SIZE[0], "the Viewer's controls need a wider window"
            for w in (v.mode_box, v.preset_box, v.adversarial_box, v.invert_box, v.link_wl_box, v.compute_button):
                assert fully_visible(w) and w.width() >= w.sizeHint().width(), f"{w.objectName() or w} is squeezed"
    for name, image in shots.items():
        assert (image.width(), image.height()) == SIZE, name
