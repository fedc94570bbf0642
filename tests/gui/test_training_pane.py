"""Training pane: a tiny comparison runs in a worker, curves and table fill, Stop and errors behave."""

import time

from arfl_studio.gui.dialogs import last_error
from arfl_studio.gui.panes.training_pane import TrainingPane

from .conftest import TINY_TRAINING, wait_task


def make_pane(qtbot, demo_dir, tmp_path, **overrides):
    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.runs_root = tmp_path / "runs"
    pane.set_dataset(str(demo_dir))
    pane.form.set_values(**dict(TINY_TRAINING, **overrides))
    return pane


def test_tiny_run_fills_curves_and_table(qtbot, demo_dir, tmp_path):
    pane = make_pane(qtbot, demo_dir, tmp_path)
    with qtbot.waitSignal(pane.run_finished, timeout=180_000) as blocker:
        handle = pane.start()
    wait_task(qtbot, handle)
    assert blocker.args[1] == "finished"
    assert (pane.run_dir / "results.json").is_file()
    pane.loss_plot.flush()
    pane.auc_plot.flush()
    for key in ("A", "B"):
        loss_colour = pane.loss_plot.curve(key).opts["pen"].color().name()
        assert pane.auc_plot.curve(f"{key}/std").opts["pen"].color().name() == loss_colour  # one colour per method
        assert pane.auc_plot.curve(f"{key}/adv").opts["pen"].color().name() == loss_colour
        assert pane.loss_plot.points(key) == 1
        assert pane.auc_plot.points(f"{key}/std") == 1
        assert pane.auc_plot.points(f"{key}/adv") == 1
    assert pane.fold_box.count() == 2
    pane.fold_box.setCurrentIndex(1)  # fold selector swaps the data, not the items
    pane.loss_plot.flush()
    assert pane.loss_plot.item_count() == 2 and pane.loss_plot.points("A") == 1
    assert pane.progress.value() == 1000
    keys = [r["key"] for r in pane.table_model.rows]
    assert keys == ["A", "B"]
    assert all("±" in r["standard"] for r in pane.table_model.rows)


def test_stop_cancels_within_a_step(qtbot, demo_dir, tmp_path):
    pane = make_pane(qtbot, demo_dir, tmp_path, epochs=200, methods=("A",))
    handle = pane.start()
    qtbot.waitUntil(lambda: pane.progress.value() > 0 or bool(pane.history), timeout=60_000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(pane.run_finished, timeout=30_000) as blocker:
        pane.stop()
    wait_task(qtbot, handle)
    assert time.perf_counter() - t0 < 10
    assert blocker.args[1] == "cancelled"
    assert pane.start_button.isEnabled() and not pane.stop_button.isEnabled()


def test_worker_error_shows_a_dialog_with_the_run_folder(qtbot, tmp_path):
    pane = make_pane(qtbot, tmp_path / "no-such-dataset", tmp_path)
    with qtbot.waitSignal(pane.run_finished, timeout=60_000) as blocker:
        handle = pane.start()
    wait_task(qtbot, handle)
    assert blocker.args[1] == "failed"
    qtbot.waitUntil(lambda: last_error() is not None)
    assert str(pane.run_dir) in last_error().text()
    assert pane.start_button.isEnabled()


def test_no_method_is_refused_without_starting(qtbot, demo_dir, tmp_path):
    pane = make_pane(qtbot, demo_dir, tmp_path, methods=())
    assert pane.start() is None
    assert "method" in last_error().text().lower()


def test_closing_mid_run_asks_then_cancels_and_waits(qtbot, window, demo_dir):
    pane = window.training_pane
    pane.set_dataset(str(demo_dir))
    pane.form.set_values(**dict(TINY_TRAINING, epochs=200, methods=("A",)))
    asked = []
    window.ask_on_close = lambda: asked.append(1) or len(asked) > 1  # "No", then "Yes"
    handle = pane.start()
    qtbot.waitUntil(lambda: pane.progress.value() > 0 or bool(pane.history), timeout=60_000)
    assert not window.close()  # refused: still running
    assert handle.is_running()
    assert window.close()
    assert not handle.is_running()
    assert len(asked) == 2
