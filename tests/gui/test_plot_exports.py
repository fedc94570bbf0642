"""Plot exports are publication figures: true vector SVG/PDF through the CLI's matplotlib
figures, every fold as mean ± std, titled with run, model and fold; empty plots are refused."""

import re

import pytest

from arfl_studio.experiments.figures import EmptyFigure, training_history
from arfl_studio.gui.export import export_pane_plots, export_plot
from arfl_studio.gui.panes.attack_pane import AttackPane
from arfl_studio.gui.panes.training_pane import TrainingPane

from .conftest import menu_titled


def _svg_title(path):
    return re.search(r"<dc:title>([^<]*)", path.read_text(encoding="utf-8")).group(1)


def _panes(qtbot):
    training, attack = TrainingPane(["cpu"]), AttackPane()
    qtbot.addWidget(training)
    qtbot.addWidget(attack)
    return training, attack


def test_exporting_before_any_training_refuses_and_writes_nothing(qtbot, tmp_path):
    training, attack = _panes(qtbot)
    plots = {
        "training_loss": training.loss_plot,
        "validation_auc": training.auc_plot,
        "roc": attack.roc_plot,
        "auc_vs_eps": attack.auc_plot,
    }
    with pytest.raises(EmptyFigure, match="train a comparison first"):
        export_plot(training.loss_plot, tmp_path / "loss.svg")
    with pytest.raises(EmptyFigure, match="run an attack first"):
        export_plot(attack.roc_plot, tmp_path / "roc.svg")
    with pytest.raises(EmptyFigure, match="nothing to export"):
        export_pane_plots(plots, tmp_path / "plots")
    assert not list(tmp_path.rglob("*.*"))


def test_training_plots_export_as_vector_figures_of_every_fold(qtbot, tmp_path, trained_run):
    training, attack = _panes(qtbot)
    training.run_dir = trained_run  # as after a run (or File → Open run)
    plots = {"training_loss": training.loss_plot, "validation_auc": training.auc_plot, "roc": attack.roc_plot}
    written, skipped = export_pane_plots(plots, tmp_path / "plots")
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in ("training_loss", "validation_auc") for e in ("png", "svg", "pdf"))
    assert skipped and skipped[0].startswith("roc:")  # no attack yet: said, not written
    svg = tmp_path / "plots" / "validation_auc.svg"
    text = svg.read_text(encoding="utf-8")
    assert "<image" not in text and "<path" in text  # vector, no embedded bitmap
    assert "fold" in _svg_title(svg) and "2 fold" in _svg_title(svg)  # every fold, said in the title
    assert "L_cls" in _svg_title(tmp_path / "plots" / "training_loss.svg")  # the default loss is L_cls
    pdf = (tmp_path / "plots" / "training_loss.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf
    history = training_history(trained_run)
    assert set(history) == {"A", "B"} and all(len(h["folds"]) == 2 for h in history.values())


def test_roc_export_names_model_and_fold(qtbot, tmp_path, trained_run):
    training, attack = _panes(qtbot)
    attack.set_run(trained_run)
    attack.fold_box.setCurrentIndex(1)
    attack.source = attack.current_source()
    attack.show_report(
        {
            "attack": "pgd",
            "n": 4,
            "n_positive": 2,
            "threshold_logit": 0.0,
            "settings": {"steps": 10},
            "clean": {"auc": 0.75, "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 1, 1]}},
            "results": [{"eps": 0.01, "auc": 0.5, "flipped": [], "flipped_count": 0, "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.5, 1]}}],
            "auc_curve": {"eps": [0.01], "adversarial_auc": [0.5]},
            "warnings": [],
        }
    )
    roc = export_plot(attack.roc_plot, tmp_path / "roc.svg")
    title = _svg_title(roc)
    assert trained_run.name in title and "method A" in title and "fold 2" in title
    assert "<image" not in roc.read_text(encoding="utf-8")
    assert "fold 2" in _svg_title(export_plot(attack.auc_plot, tmp_path / "auc.svg"))


def test_each_plot_exports_on_its_own_from_its_menu_and_file_export(qtbot, window, tmp_path, monkeypatch):
    """Right-click menu and File → Export plot: one plot, the typed suffix chooses the format (vector PDF/SVG)."""
    from PySide6.QtWidgets import QFileDialog

    plot = window.training_pane.loss_plot
    plot.figure_source = None  # the screen plot itself (a pane's publication figure is tested above)
    plot.set_curve("A", [1, 2, 3], [0.9, 0.6, 0.5])
    plot.flush()
    answers = iter([(str(tmp_path / "loss.pdf"), "PNG (*.png)"), (str(tmp_path / "loss"), "SVG, vector (*.svg)")])
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: next(answers))
    menu_action = next(a for a in plot.getPlotItem().getViewBox().menu.actions() if a.text().startswith("Export this"))
    menu_action.trigger()
    pdf = (tmp_path / "loss.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" not in pdf  # drawn as paths, not a picture
    plot_menu = menu_titled(window, "Export plot")
    assert [a.text().split(" (")[0] for a in plot_menu.actions()] == ["Training loss", "Validation AUC", "ROC", "AUC vs ε"]
    plot_menu.actions()[0].trigger()
    svg = (tmp_path / "loss.svg").read_text(encoding="utf-8")  # no suffix typed: the filter's
    assert "<svg" in svg and "<image" not in svg
