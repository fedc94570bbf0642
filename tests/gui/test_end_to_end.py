"""The whole app: demo data -> 1-epoch tiny training -> curves -> attack -> overlay -> exported table."""

from arfl_studio.gui.export import export_overlay, export_run_table
from arfl_studio.gui.screenshots import drive

from .conftest import TINY_TRAINING


def test_demo_train_attack_overlay_export(qtbot, window, tmp_path):
    outcome = drive(
        window,
        demo_dir=tmp_path / "demo",
        demo_patients=8,
        demo_size=(64, 52),
        training=dict(TINY_TRAINING),
        runs_root=tmp_path / "runs",
        timeout_s=300,
    )
    # the window opened on the demo data
    assert window.dataset_pane.scan is not None and window.dataset_pane.image_model.rowCount() > 0
    # training finished and the curves have points
    training = window.training_pane
    assert training.task.outcome == "done"
    training.loss_plot.flush()
    training.auc_plot.flush()
    assert training.loss_plot.points("A") >= 1 and training.auc_plot.points("B/adv") >= 1
    # the attack ran
    assert window.attack_pane.report is not None and window.attack_pane.roc_plot.points("clean") >= 0
    # an overlay shows in the viewer
    assert window.tabs.currentWidget() is window.viewer_pane
    assert window.viewer_pane.view_a.overlay_visible()
    # tables, plots and overlays export
    run_dir = outcome["run_dir"]
    for ext in ("csv", "xlsx", "md", "tex"):
        path = export_run_table(run_dir, tmp_path / f"table.{ext}")
        assert path.stat().st_size > 0
    assert "Standard training" in (tmp_path / "table.md").read_text()
    plots = window.export_plots(tmp_path / "plots")
    assert all(p.stat().st_size > 0 for p in plots) and len(plots) == 12  # 4 plots x SVG, PDF, PNG
    assert export_overlay(window.viewer_pane.view_a, tmp_path / "overlay.svg").stat().st_size > 0
