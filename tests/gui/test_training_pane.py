"""Training pane: a tiny comparison runs in a worker, curves and table fill, Stop and errors behave."""

import time

import pytest

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


def _pane_with_plan(qtbot, demo_dir, tmp_path, methods=("A", "F"), folds=2):
    pane = make_pane(qtbot, demo_dir, tmp_path, methods=methods, folds=folds)
    pane._reset(pane.form.methods(), pane.form.config_dict(pane.data_section))
    return pane


def test_live_and_final_tables_print_the_same_sample_std_in_percent(qtbot, demo_dir, tmp_path):
    from arfl_studio.experiments import FoldFinished
    from arfl_studio.gui.panes.training_pane import format_row

    pane = _pane_with_plan(qtbot, demo_dir, tmp_path)
    pane._on_event(FoldFinished("A", 0, 0.6, 0.5))
    pane._on_event(FoldFinished("A", 1, 0.8, 0.7))
    live = pane.table_model.rows[0]
    # sample std of (60, 80) is 14.1; the population std (the old live table) was 10.0
    assert live["standard_auc"] == "70.0 ± 14.1" and live["adversarial_auc"] == "60.0 ± 14.1"
    headers = [h for _k, h in pane.table_model.columns]
    assert "Standard AUC (%)" in headers
    # the final table (from results.json's mean/std, ddof=1) prints the same text for the same folds
    final = format_row(
        {
            "standard_auc": 0.7,
            "standard_auc_std": 0.1414213562,
            "adversarial_auc": 0.6,
            "adversarial_auc_std": 0.1414213562,
            "mean_auc": 0.65,
        }
    )
    assert final["standard"] == live["standard_auc"] and final["adversarial"] == live["adversarial_auc"]
    pane._on_event(FoldFinished("F", 0, 0.55, 0.4))  # one fold: no std to show, not "± 0"
    assert pane.table_model.rows[1]["standard_auc"] == "55.0"


def test_loss_plot_shows_l_cls_by_default_unscaled_with_legend_outside(qtbot, demo_dir, tmp_path):
    from arfl_studio.experiments import FoldEvent
    from arfl_studio.training import EpochEvent

    pane = _pane_with_plan(qtbot, demo_dir, tmp_path)
    pane.resize(1200, 700)
    pane.show()
    # an ARFL row: negative total (it includes lambda * L_robust) next to a plain BCE row
    pane._on_event(
        FoldEvent(
            "F",
            0,
            EpochEvent(
                0,
                1,
                {"cls_clean": 0.70, "cls_adversarial": 0.74, "robust_clean": -0.59, "robust_adversarial": -0.59, "total": -5.14},
                {"standard_auc": 0.6},
            ),
        )
    )
    pane._on_event(FoldEvent("A", 0, EpochEvent(0, 1, {"cls_clean": 0.69, "total": 0.69}, {"standard_auc": 0.5})))
    pane.loss_plot.flush()
    pane.auc_plot.flush()
    assert pane.loss_plot.curve("F").yData[0] == pytest.approx(0.5 * 0.70 + 0.5 * 0.74)  # r-weighted L_cls
    assert pane.auc_plot.curve("F/std").yData[0] == pytest.approx(60.0)  # percent, like the tables
    assert "L_cls" in pane.loss_plot.title_text()
    pane.loss_box.setCurrentIndex(1)  # the total objective on request
    pane.loss_plot.flush()
    assert pane.loss_plot.curve("F").yData[0] == pytest.approx(-5.14)
    axis = pane.loss_plot.getPlotItem().getAxis("left")
    assert not axis.autoSIPrefix  # no "loss (x0.001)"
    qtbot.wait(50)
    view = pane.loss_plot.getPlotItem().vb.sceneBoundingRect()
    legend = pane.loss_plot._legend.sceneBoundingRect()
    assert legend.left() >= view.right() - 1  # the legend never covers the data
    assert pane.loss_plot.legend_labels()[0].startswith("A")


def test_stop_clears_eta_and_shows_stopped(qtbot, demo_dir, tmp_path):
    pane = make_pane(qtbot, demo_dir, tmp_path, epochs=200, methods=("A",))
    handle = pane.start()
    qtbot.waitUntil(lambda: "ETA" in pane.eta_label.text(), timeout=60_000)
    with qtbot.waitSignal(pane.run_finished, timeout=30_000):
        pane.stop()
    wait_task(qtbot, handle)
    assert "ETA" not in pane.eta_label.text() and pane.eta_label.text() == "stopped"
    assert pane.progress.value() == 0 and pane.progress.text().startswith("stopped")
    pane.start()  # a new run resets the bar to a plain percentage
    assert pane.progress.format() == "%p%" and pane.eta_label.text() == ""
    pane.stop()
    wait_task(qtbot, pane.task)


def test_final_table_prints_the_exported_numbers(qtbot, trained_run, tmp_path):
    import re

    from arfl_studio.experiments.result_tables import render_table

    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.run_dir = trained_run
    pane._fill_final_table()
    md = render_table(str(trained_run), "md")
    assert "AUC in %" in md
    headers = [h for _k, h in pane.table_model.columns]
    assert "Standard AUC (%)" in headers and "Sens / spec (%)" in headers
    for row in pane.table_model.rows:
        line = next(line for line in md.splitlines() if line.startswith(f"| {row['key']}. "))
        numbers = re.findall(r"\d+\.\d", line)
        assert re.findall(r"\d+\.\d", row["standard"]) == numbers[:2]  # mean and sample std, in percent
        assert row["rates"].replace(" ", "") in line.replace(" ", "")


def test_the_first_run_with_default_settings_is_the_headless_demo(qtbot, tmp_path):
    """The app's first run trains what `arfl-studio` without a screen trains (issue 16)."""
    from arfl_studio.experiments.config import load_config
    from arfl_studio.experiments.headless_demo import demo_config

    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    data = {"demo": True, "demo_dir": str(tmp_path / "demo")}
    first = load_config(pane.form.config_dict(data))
    demo = load_config(demo_config(tmp_path / "demo"))
    for name in ("epochs", "batch_size", "lr", "lr_schedule", "threshold", "threshold_holdout", "pos_weight"):
        assert getattr(first.training, name) == getattr(demo.training, name), name
    assert first.training.lr_schedule == "cosine"
    assert first.preprocess["size"] == demo.preprocess["size"] and first.cv.folds == demo.cv.folds
    assert first.model.backbone == demo.model.backbone == "small_cnn"
    assert [m.key for m in first.methods] == [m.key for m in demo.methods]
    assert [m.attack.steps for m in first.methods] == [m.attack.steps for m in demo.methods]
    pane.form.set_values(lr_schedule="constant")
    assert load_config(pane.form.config_dict(data)).training.lr_schedule == "constant"


def test_real_films_with_lesion_marks_are_offered_the_real_data_recipe(qtbot, tmp_path):
    from arfl_studio.experiments import load_config

    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.set_dataset(str(tmp_path / "films"), layout="csv", lesions=12)
    assert pane.form.recipe_box.currentText() == "real_cpu" and not pane.form.backbone_box.isEnabled()
    config = load_config(pane.form.config_dict(pane.data_section))
    assert config.model.backbone == "patch_fcn" and config.patch_stage.epochs > 0
    assert config.data.root == str(tmp_path / "films") and config.preprocess["crop"] == "breast-only"
    pane.set_dataset(str(tmp_path / "films"), layout="csv", lesions=0)  # no lesion marks: the form
    assert pane.form.recipe_box.currentText() == "form" and pane.form.backbone_box.isEnabled()


def test_final_table_marks_rows_and_tests_on_fewer_folds(qtbot, tmp_path):
    """Issue 27: a method at 2 of 5 folds is marked, and so is every p-value that compares with it."""
    from arfl_studio import atomic
    from arfl_studio.experiments.config import load_config
    from arfl_studio.experiments.result_tables import PARTIAL_ROW, PARTIAL_TEST

    out = tmp_path / "run"
    atomic.write_text(
        out / "config.toml",
        load_config({"name": "uneven", "data": {"source": "synthetic"}, "cv": {"folds": 5}, "methods": ["A", "F"]}).to_toml(),
    )
    for key, folds in (("A", range(5)), ("F", (0, 3))):
        for fold in folds:
            atomic.write_json(
                out / key / f"fold_{fold}" / "manifest.json",
                {"status": "finished", "results": {"standard_auc": 0.6 + 0.02 * fold + (0.1 if key == "F" else 0), "adversarial_auc": 0.5}},
            )
    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.run_dir = out
    pane._fill_final_table()
    rows = {row["key"]: row for row in pane.table_model.rows}
    assert rows["F"]["folds"] == f"2/5 {PARTIAL_ROW}" and rows["A"]["folds"] == "5/5"
    assert rows["A"]["p_standard_auc_vs_F"].endswith(PARTIAL_TEST)
    column = [k for k, _ in pane.table_model.columns].index("folds")
    assert pane.table_model.data(pane.table_model.index(list(rows).index("F"), column)) == f"2/5 {PARTIAL_ROW}"


def test_the_final_table_names_the_split_and_the_official_split_is_a_choice(qtbot, trained_run, tmp_path):
    pane = TrainingPane(["cpu"])
    qtbot.addWidget(pane)
    pane.run_dir = trained_run
    pane._fill_final_table()
    assert "Split: patient-level 2-fold cross-validation" in pane.table_note.text()
    assert "Labels: " in pane.table_note.text()  # the demo's CMMD-style clinical table
    pane.form.set_values(split="official")
    assert not pane.form.folds_spin.isEnabled()
    assert pane.form.config_dict({"demo": True})["cv"]["split"] == "official"
    pane.set_dataset(str(tmp_path), layout="vindr", layout_options={"birads_positive": "4,5"})
    assert pane.data_section == {"root": str(tmp_path), "layout": "vindr", "birads_positive": "4,5"}
