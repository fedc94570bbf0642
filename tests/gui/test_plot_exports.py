"""Plot exports are publication figures: true vector SVG/PDF through the CLI's matplotlib
figures, every fold as mean ± std, titled with run, model and fold; empty plots are refused."""

import re

import pytest

from arfl_studio.experiments.figures import EmptyFigure, training_history
from arfl_studio.gui.export import export_pane_plots, export_plot
from arfl_studio.gui.panes.attack_pane import AttackPane
from arfl_studio.gui.panes.training_pane import TrainingPane


def _svg_title(path):
    return re.search(r"<dc:title>([^<]*)", path.read_text(encoding="utf-8")).group(1)


def _panes(qtbot):
    training, attack = TrainingPane(["cpu"]), AttackPane()
    qtbot.addWidget(training)
    qtbot.addWidget(attack)
    return training, attack


def test_exporting_before_any_training_refuses_and_writes_nothing(qtbot, tmp_path):
    training, attack = _panes(qtbot)
    plots = {"training_loss": training.loss_plot, "validation_auc": training.auc_plot,
             "roc": attack.roc_plot, "auc_vs_eps": attack.auc_plot}
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
    assert sorted(p.name for p in written) == sorted(f"{n}.{e}" for n in ("training_loss", "validation_auc")
                                                     for e in ("png", "svg", "pdf"))
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
    attack.show_report({
        "attack": "pgd", "n": 4, "n_positive": 2, "threshold_logit": 0.0, "settings": {"steps": 10},
        "clean": {"auc": 0.75, "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 1, 1]}},
        "results": [{"eps": 0.01, "auc": 0.5, "flipped": [], "flipped_count": 0,
                     "roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.5, 1]}}],
        "auc_curve": {"eps": [0.01], "adversarial_auc": [0.5]}, "warnings": [],
    })
    roc = export_plot(attack.roc_plot, tmp_path / "roc.svg")
    title = _svg_title(roc)
    assert trained_run.name in title and "method A" in title and "fold 2" in title
    assert "<image" not in roc.read_text(encoding="utf-8")
    assert "fold 2" in _svg_title(export_plot(attack.auc_plot, tmp_path / "auc.svg"))
