"""A run with unequal fold counts: every row says its folds, tests use the folds both methods have,
and rows / tests on fewer folds than declared are marked in every export format."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, wilcoxon
from sklearn.metrics import roc_auc_score

from arfl_studio import atomic
from arfl_studio.evaluation.roc_stats import paired_delong_test
from arfl_studio.experiments import collect, comparison_rows, export_table, load_config
from arfl_studio.experiments.fold_predictions import write_predictions
from arfl_studio.experiments.result_tables import PARTIAL_ROW, PARTIAL_TEST, render_table

FOLDS = 5
IMAGES = 200
FINISHED = {"A": [0, 1, 2, 3, 4], "E": [0, 1, 2, 3, 4], "F": [1, 3]}  # F: 2 of 5 folds
SHIFT = {"A": 0.5, "E": 1.0, "F": 1.5}


def _run(tmp_path):
    out = tmp_path / "run"
    config = load_config({"name": "uneven", "data": {"source": "synthetic"}, "cv": {"folds": FOLDS}, "methods": list(FINISHED)})
    atomic.write_text(out / "config.toml", config.to_toml())
    rng = np.random.default_rng(0)
    labels = (rng.random(IMAGES) < 0.4).astype(int)
    scores = {}
    for key, folds in FINISHED.items():
        clean = labels * SHIFT[key] + rng.normal(size=IMAGES)
        adv = clean - 0.8 * labels + 0.3 * rng.normal(size=IMAGES)
        scores[key] = (clean, adv)
        for fold in folds:
            idx = np.arange(fold, IMAGES, FOLDS)
            folder = out / key / f"fold_{fold}"
            atomic.write_json(
                folder / "manifest.json",
                {
                    "status": "finished",
                    "results": {
                        "standard_auc": roc_auc_score(labels[idx], clean[idx]),
                        "adversarial_auc": roc_auc_score(labels[idx], adv[idx]),
                    },
                },
            )
            write_predictions(folder, fold, idx, labels[idx], clean[idx], adv[idx])
    return out, labels, scores


def test_uneven_folds_rows_markers_and_p_values(tmp_path):
    out, labels, scores = _run(tmp_path)
    results = collect(out)
    methods = {m["key"]: m for m in results["methods"]}
    assert methods["F"]["standard_auc"]["n"] == 2 and methods["F"]["partial"]
    assert methods["A"]["standard_auc"]["n"] == 5 and not methods["A"]["partial"]
    # A vs F: only the 2 folds both have, and the test says so
    test = methods["A"]["tests"]["standard_auc"]["F"]
    a, f = methods["A"]["standard_auc"]["per_fold"], methods["F"]["standard_auc"]["per_fold"]
    assert test["folds"] == [1, 3] and test["partial"] and "Mann-Whitney" in test["test"]
    assert test["p"] == pytest.approx(mannwhitneyu([a[1], a[3]], [f[1], f[3]], alternative="two-sided").pvalue)
    assert methods["A"]["p_values"]["standard_auc"]["F"] == test["p"]
    full = methods["A"]["tests"]["adversarial_auc"]["E"]
    ae, ee = methods["A"]["adversarial_auc"]["per_fold"], methods["E"]["adversarial_auc"]["per_fold"]
    assert full["n_folds"] == 5 and not full["partial"]
    assert full["paired_p"] == pytest.approx(wilcoxon(ae, ee).pvalue) and "Wilcoxon" in full["paired_test"]

    # pooled out-of-fold AUC and the paired DeLong test on the images both scored
    pooled = methods["F"]["pooled_oof"]["standard_auc"]
    idx = np.concatenate([np.arange(k, IMAGES, FOLDS) for k in (1, 3)])
    assert pooled["auc"] == pytest.approx(roc_auc_score(labels[idx], scores["F"][0][idx]))
    assert pooled["n"] == len(idx) and pooled["n_positive"] == labels[idx].sum() and pooled["partial"]
    assert pooled["lo"] < pooled["auc"] < pooled["hi"]
    delong = methods["A"]["delong"]["adversarial_auc"]["F"]
    expected = paired_delong_test(labels[idx], scores["A"][1][idx], scores["F"][1][idx])
    assert delong["p"] == pytest.approx(expected[3]) and delong["folds"] == [1, 3] and delong["n"] == len(idx)

    rows = {r["key"]: r for r in comparison_rows(results)}
    assert (rows["F"]["folds"], rows["F"]["folds_declared"], rows["F"]["partial"]) == (2, 5, True)
    assert rows["A"]["folds"] == 5 and not rows["A"]["partial"]
    assert rows["A"]["p_standard_auc_vs_F_folds"] == 2 and rows["A"]["p_standard_auc_vs_F_partial"]

    md = render_table(results, "md")
    line = {r.split(" | ")[0].strip("| ").split(".")[0]: r for r in md.splitlines() if r.startswith("| ")}
    assert f"| 2/5 {PARTIAL_ROW} |" in line["F"] and "| 5/5 |" in line["A"]
    assert PARTIAL_TEST in line["A"] and PARTIAL_TEST in line["E"]  # both compare with 2-fold F
    assert "fewer folds than the run declares" in md and "n = 80 images" in md
    tex = render_table(results, "tex")
    assert r"2/5 $^\dagger$" in tex and r"$^\ddagger$" in tex and PARTIAL_ROW not in tex
    parsed = {r["key"]: r for r in csv.DictReader(io.StringIO(render_table(results, "csv")))}
    assert parsed["F"]["partial"] == "True" and parsed["F"]["folds"] == "2" and parsed["A"]["partial"] == "False"
    assert parsed["A"]["p_standard_auc_vs_F_partial"] == "True"
    from openpyxl import load_workbook

    sheet = load_workbook(export_table(results, tmp_path / "t.xlsx"))["comparison"]
    cells = [c.value for row in sheet.iter_rows() for c in row if c.value]
    assert f"2/5 {PARTIAL_ROW}" in cells and any(PARTIAL_TEST in str(c) for c in cells)


def test_complete_run_has_no_markers_unless_predictions_are_missing(tmp_path):
    out, labels, scores = _run(tmp_path)
    for fold in (0, 2):  # F catches up; fold 4 stored no predictions (an older run)
        idx = np.arange(fold, IMAGES, FOLDS)
        write_predictions(out / "F" / f"fold_{fold}", fold, idx, labels[idx], *(s[idx] for s in scores["F"]))
    for fold in (0, 2, 4):
        atomic.write_json(
            out / "F" / f"fold_{fold}" / "manifest.json", {"status": "finished", "results": {"standard_auc": 0.8, "adversarial_auc": 0.7}}
        )
    results = collect(out)
    f = next(m for m in results["methods"] if m["key"] == "F")
    assert results["complete"] and not f["partial"]
    assert f["pooled_oof"]["standard_auc"]["n_folds"] == 4 and f["pooled_oof"]["standard_auc"]["partial"]
    md = render_table(results, "md")
    assert "| 5/5 |" in md and f"5/5 {PARTIAL_ROW}" not in md
    pooled_cells = [line.split(" | ")[5] for line in md.splitlines() if line.startswith("| F.")]
    assert pooled_cells[0].endswith(PARTIAL_ROW)  # the pooled AUC over 4 of 5 folds is marked
    write_predictions(
        out / "F" / "fold_4", 4, *(lambda i: (i, labels[i], scores["F"][0][i], scores["F"][1][i]))(np.arange(4, IMAGES, FOLDS))
    )
    md = render_table(collect(out), "md")
    assert PARTIAL_ROW not in md and PARTIAL_TEST not in md
