"""Attack pane: attack a trained fold in a worker; ROC, AUC-vs-eps, warnings, flipped cases."""

import numpy as np
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
    # the threshold used for "flipped", and sensitivity/specificity at it, next to the AUC
    assert "Decision threshold: logit" in pane.summary.text() and "sensitivity" in pane.summary.text()
    assert report["threshold"]["logit"] == pytest.approx(report["threshold_logit"])
    assert "decision threshold" in pane.flip_note.text()
    assert pane.progress.text() == "done" and pane.stage_label.text().startswith("Finished")
    # every listed case keeps its own δ for the viewer (the attack's exact adversarial input)
    for result in report["results"]:
        for case in result["flipped"]:
            assert case["delta_kept"] and (result["eps"], case["index"]) in pane.deltas


def test_flipped_case_double_click_requests_the_viewer(qtbot, trained_run):
    pane = AttackPane()
    qtbot.addWidget(pane)
    pane.set_run(trained_run)
    pane.source = pane.current_source()
    record = object()
    report = {
        "attack": "pgd",
        "n": 2,
        "n_positive": 1,
        "threshold_logit": 0.0,
        "clean": {"auc": 1.0, "roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}},
        "results": [
            {
                "eps": 0.01,
                "auc": 0.0,
                "flipped_count": 1,
                "roc": {"fpr": [0, 1, 1], "tpr": [0, 0, 1]},
                "flipped": [
                    {
                        "index": 1,
                        "id": "x.dcm",
                        "patient_id": "P1",
                        "laterality": "L",
                        "view": "CC",
                        "label": 1,
                        "clean_prob": 0.8,
                        "adversarial_prob": 0.2,
                    }
                ],
            }
        ],
        "auc_curve": {"eps": [0.01], "adversarial_auc": [0.0]},
        "warnings": [{"name": "pgd_beats_fgsm", "message": "FGSM did better than PGD"}],
    }
    delta = np.full((1, 8, 8), 0.01, dtype=np.float16)
    pane.show_report(report, [None, record], {(0.01, 1): delta})
    assert "pgd_beats_fgsm" in pane.warnings.text() and "Sanity checks failed" in pane.warnings.text()
    with qtbot.waitSignal(pane.case_requested) as blocker:
        pane.flip_table.doubleClicked.emit(pane.flip_model.index(0, 0))
    request = blocker.args[0]
    assert request["record"] is record and request["method"] == "A" and request["eps"] == 0.01
    assert request["delta"] is delta  # the viewer rebuilds the attack's own adversarial input


def test_attack_without_a_run_says_why(qtbot):
    from arfl_studio.gui.dialogs import last_error

    pane = AttackPane()
    qtbot.addWidget(pane)
    assert pane.run_attack() is None
    assert "run folder" in last_error().text()


def _report(flipped, empty_reason=None, threshold=None, sensitivity=0.5):
    return {
        "attack": "pgd",
        "n": 4,
        "n_positive": 2,
        "threshold_logit": -0.31,
        "threshold_prob": 0.423,
        "threshold": threshold or {"logit": -0.31, "rule": "youden", "note": ""},
        "clean": {"auc": 0.75, "sensitivity": sensitivity, "specificity": 1.0, "roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}},
        "results": [
            {
                "eps": 0.03,
                "auc": 0.0,
                "sensitivity": 0.0,
                "specificity": 0.5,
                "flipped": flipped,
                "flipped_count": len(flipped),
                "moved_against_label": 3,
                "empty_reason": empty_reason,
                "roc": {"fpr": [0, 1, 1], "tpr": [0, 0, 1]},
            }
        ],
        "auc_curve": {"eps": [0.03], "adversarial_auc": [0.0]},
        "warnings": [],
        "settings": {"probes": ["fgsm", "square"]},
    }


def test_summary_shows_threshold_rates_and_why_the_flip_table_is_empty(qtbot):
    pane = AttackPane()
    qtbot.addWidget(pane)
    reason = "no prediction crossed the decision threshold (probability 0.423, logit -0.31): 3 of 4 cases moved"
    pane.show_report(_report([], empty_reason=reason))
    summary = pane.summary.text()
    assert "logit -0.31" in summary and "Youden" in summary  # the stored threshold and how it was chosen
    assert "sensitivity" in summary and "50.0 %" in summary and "75.0 %" in summary  # AUC in percent, as the tables
    note = pane.flip_note.text()
    assert "table is empty" in note and reason in note
    assert "did not help less" not in pane.warnings.text()
    assert "did at least as well as fgsm, square" in pane.warnings.text()
    # a model without a stored threshold says that logit 0 is used
    pane.show_report(_report([], threshold={"logit": 0.0, "rule": "none", "note": "no stored threshold: logit 0"}, sensitivity=0.0))
    assert "the model stores no threshold" in pane.summary.text()
    assert "calls every image benign" in pane.flip_note.text()


def test_threshold_comes_from_the_saved_model(trained_run):
    import json

    from arfl_studio.experiments.attack_task import model_threshold

    stored = json.loads((trained_run / "B" / "fold_1" / "model.json").read_text())
    threshold = model_threshold({"run_dir": str(trained_run), "method": "B", "fold": 1})
    assert threshold["logit"] == pytest.approx(stored["threshold_logit"])
    assert threshold["rule"] == stored["threshold"]["rule"]


def test_flip_table_sorts_and_double_click_opens_the_row_shown(qtbot, trained_run):
    from PySide6.QtCore import Qt

    pane = AttackPane()
    qtbot.addWidget(pane)
    pane.set_run(trained_run)
    pane.source = pane.current_source()
    flipped = [
        {"index": i, "id": f"c{i}.dcm", "label": i % 2, "clean_prob": p, "adversarial_prob": 1 - p} for i, p in enumerate([0.3, 0.9, 0.6])
    ]
    records = ["r0", "r1", "r2"]
    pane.show_report(_report(flipped), records)
    column = [k for k, _ in pane.flip_model.columns].index("clean_prob")
    pane.flip_table.sortByColumn(column, Qt.SortOrder.DescendingOrder)
    shown = [pane.flip_model.data(pane.flip_model.index(r, column)) for r in range(3)]
    assert shown == ["0.900", "0.600", "0.300"]
    with qtbot.waitSignal(pane.case_requested) as blocker:
        pane.flip_table.doubleClicked.emit(pane.flip_model.index(0, 0))
    assert blocker.args[0]["record"] == "r1"  # the row the user sees on top, not the first flipped case


def test_sanity_check_choices_and_budget_reach_the_core(qtbot, trained_run, monkeypatch):
    import threading

    import arfl_studio.evaluation.robustness as robustness
    from arfl_studio.experiments.attack_task import attack_task

    pane = AttackPane()
    qtbot.addWidget(pane)
    pane.attack_box.setCurrentText("pgd")
    assert pane.check_boxes["fgsm"].isChecked() and pane.check_boxes["square"].isChecked()
    with_square = pane.plan_text()
    assert "Square (200 queries)" in with_square
    pane.check_boxes["square"].setChecked(False)
    pane.queries_spin.setValue(50)
    pane.large_box.setChecked(False)
    pane.subset_spin.setValue(5)
    assert "Square" not in pane.plan_label.text() and "5 images" in pane.plan_label.text()
    seen = {}

    class Seen(Exception):
        pass

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise Seen

    monkeypatch.setattr(robustness, "evaluate_robustness", fake)
    task = attack_task({"run_dir": str(trained_run), "method": "A", "fold": 0}, "pgd", [0.01], 2, 1, "cpu", pane.checks())
    with pytest.raises(Seen):
        task(lambda *a, **k: None, threading.Event())
    assert seen["probes"] == ["fgsm"] and seen["probe_queries"] == 50
    assert seen["large_eps"] is None and seen["probe_images"] == 5
    assert seen["threshold"] == pytest.approx(json_threshold(trained_run, "A", 0))


def json_threshold(run, key, fold):
    import json

    return json.loads((run / key / f"fold_{fold}" / "model.json").read_text())["threshold_logit"]


def _long_attack(pane, trained_run):
    pane.device = "cpu"
    pane.set_run(trained_run)
    pane.eps_edit.setText("0.001, 0.01, 0.05")
    pane.steps_spin.setValue(1000)  # minutes of work: a Stop must not wait for it
    for box in pane.check_boxes.values():
        box.setChecked(False)
    pane.large_box.setChecked(False)
    return pane.run_attack()


def test_stop_during_an_attack_shows_stopped_within_a_second(qtbot, trained_run):
    import time

    from arfl_studio.gui.dialogs import last_error

    pane = AttackPane()
    qtbot.addWidget(pane)
    handle = _long_attack(pane, trained_run)
    qtbot.waitUntil(lambda: "step" in pane.stage_label.text(), timeout=120_000)  # inside the PGD steps
    t0 = time.perf_counter()
    pane.stop()
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=60_000)
    latency = time.perf_counter() - t0
    qtbot.waitUntil(lambda: handle.outcome is not None)
    qtbot.wait(50)
    assert latency < 1.0, f"the attack took {latency:.1f} s to stop"
    assert pane.summary.text().startswith("Attack stopped") and "failed" not in pane.summary.text()
    assert pane.progress.value() == 0 and pane.progress.text() == "stopped"
    assert pane.run_button.isEnabled() and not pane.stop_button.isEnabled()
    assert last_error() is None  # no error dialog for a Stop


def test_closing_the_window_during_an_attack_does_not_freeze(qtbot, window, trained_run):
    import time

    pane = window.attack_pane
    handle = _long_attack(pane, trained_run)
    qtbot.waitUntil(lambda: "step" in pane.stage_label.text(), timeout=120_000)
    t0 = time.perf_counter()
    assert window.close()
    assert time.perf_counter() - t0 < 2.0
    assert not handle.is_running()
