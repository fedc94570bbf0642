"""Attack pane: attack a trained fold in a worker; ROC, AUC-vs-eps, warnings, flipped cases."""

import pytest

from arfl_studio.gui.panes.attack_pane import AttackPane, parse_eps

from .conftest import wait_task


def test_parse_eps():
    assert parse_eps("0.01, 0.001;0.01") == [0.001, 0.01]
    with pytest.raises(ValueError):
        parse_eps("a, b")
    with pytest.raises(ValueError):
        parse_eps("-1")


def test_attack_on_a_trained_run(qtbot, trained_run):
    pane = AttackPane()
    qtbot.addWidget(pane)
    pane.device = "cpu"
    pane.set_run(trained_run)
    assert [pane.method_box.itemText(i) for i in range(pane.method_box.count())] == ["A", "B"]
    assert pane.fold_box.count() == 2
    pane.eps_edit.setText("0.001, 0.05")
    pane.steps_spin.setValue(2)
    with qtbot.waitSignal(pane.attack_finished, timeout=120_000) as blocker:
        handle = pane.run_attack()
    wait_task(qtbot, handle)
    report = blocker.args[0]
    assert [r["eps"] for r in report["results"]] == [0.001, 0.05]
    assert pane.roc_plot.points("clean") > 0 or not report["clean"]["roc"]["fpr"]
    assert pane.auc_plot.points("adv") == 2
    assert pane.warnings.text()  # passed or failed, the sanity checks are stated
    assert pane.flip_eps_box.count() == 2
    assert pane.flip_model.rowCount() == report["results"][-1]["flipped_count"]


def test_flipped_case_double_click_requests_the_viewer(qtbot, trained_run):
    pane = AttackPane()
    qtbot.addWidget(pane)
    pane.set_run(trained_run)
    pane.source = pane.current_source()
    record = object()
    report = {
        "attack": "pgd", "n": 2, "n_positive": 1,
        "clean": {"auc": 1.0, "roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}},
        "results": [{"eps": 0.01, "auc": 0.0, "flipped_count": 1, "roc": {"fpr": [0, 1, 1], "tpr": [0, 0, 1]},
                     "flipped": [{"index": 1, "id": "x.dcm", "patient_id": "P1", "laterality": "L", "view": "CC",
                                  "label": 1, "clean_prob": 0.8, "adversarial_prob": 0.2}]}],
        "auc_curve": {"eps": [0.01], "adversarial_auc": [0.0]},
        "warnings": [{"name": "pgd_beats_fgsm", "message": "FGSM did better than PGD"}],
    }
    pane.show_report(report, [None, record])
    assert "pgd_beats_fgsm" in pane.warnings.text() and "Sanity checks failed" in pane.warnings.text()
    with qtbot.waitSignal(pane.case_requested) as blocker:
        pane.flip_table.doubleClicked.emit(pane.flip_model.index(0, 0))
    request = blocker.args[0]
    assert request["record"] is record and request["method"] == "A" and request["eps"] == 0.01


def test_attack_without_a_run_says_why(qtbot):
    from arfl_studio.gui.dialogs import last_error

    pane = AttackPane()
    qtbot.addWidget(pane)
    assert pane.run_attack() is None
    assert "run folder" in last_error().text()
