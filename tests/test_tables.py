"""Comparison table and statistics from a hand-made run folder (no training)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from scipy.stats import mannwhitneyu

from arfl_studio import atomic
from arfl_studio.experiments import collect, comparison_rows, export_table, load_config, mann_whitney
from arfl_studio.experiments.result_tables import render_table

FOLDS = 5
AUCS = {  # key: (standard per fold, adversarial per fold)
    "A": ([0.60, 0.62, 0.64, 0.66, 0.68], [0.40, 0.42, 0.41, 0.43, 0.39]),
    "E": ([0.66, 0.67, 0.68, 0.69, 0.70], [0.64, 0.65, 0.66, 0.67, 0.68]),
    "F": ([0.70, 0.71, 0.72, 0.73, 0.74], [0.69, 0.70, 0.71, 0.72, 0.73]),
}


def fake_run(tmp_path: Path) -> Path:
    out = tmp_path / "run"
    config = load_config({"name": "fake", "data": {"source": "synthetic"}, "cv": {"folds": FOLDS}, "methods": list(AUCS)})
    atomic.write_text(out / "config.toml", config.to_toml())
    for key, (standard, adversarial) in AUCS.items():
        for fold in range(FOLDS):
            atomic.write_json(
                out / key / f"fold_{fold}" / "manifest.json",
                {"status": "finished", "results": {"standard_auc": standard[fold], "adversarial_auc": adversarial[fold]}},
            )
    return out


def test_collect_means_stds_and_mann_whitney(tmp_path):
    results = collect(fake_run(tmp_path))
    assert results["complete"] and results["reference"] == "F"
    f = next(m for m in results["methods"] if m["key"] == "F")
    assert f["standard_auc"]["mean"] == pytest.approx(0.72)
    assert f["standard_auc"]["std"] == pytest.approx(0.0158113883, rel=1e-6)  # sample std, ddof = 1
    assert f["mean_auc"] == pytest.approx((0.72 + 0.71) / 2)
    expected = mannwhitneyu(AUCS["F"][1], AUCS["A"][1], alternative="two-sided").pvalue
    assert f["p_values"]["adversarial_auc"]["A"] == pytest.approx(expected)
    assert f["p_values"]["adversarial_auc"]["A"] < 0.05
    a = next(m for m in results["methods"] if m["key"] == "A")
    assert a["p_values"]["standard_auc"]["F"] == pytest.approx(f["p_values"]["standard_auc"]["A"])
    assert json.loads((tmp_path / "run" / "results.json").read_text())["methods"][0]["key"] == "A"


def test_missing_folds_are_reported_not_invented(tmp_path):
    out = fake_run(tmp_path)
    (out / "A" / "fold_3" / "manifest.json").unlink()
    results = collect(out)
    a = next(m for m in results["methods"] if m["key"] == "A")
    assert not results["complete"] and a["folds_finished"] == [0, 1, 2, 4]
    assert a["standard_auc"]["per_fold"][3] is None
    assert "Incomplete" in render_table(results, "md")


def test_mann_whitney_edge_cases():
    assert mann_whitney([0.5], [0.6, 0.7]) is None
    assert mann_whitney([0.5, 0.5], [0.5, 0.5]) == 1.0
    assert mann_whitney([0.1, 0.2, 0.3], [0.7, 0.8, 0.9]) == pytest.approx(0.1)


def test_table_formats(tmp_path):
    results = collect(fake_run(tmp_path))
    rows = comparison_rows(results)
    assert [r["key"] for r in rows] == ["A", "E", "F"] and rows[2]["p_mean_auc_vs_F"] is None
    md = render_table(results, "md")
    assert "| F. Dual adversarial training + ARFL | 5/5 | 72.0 ± 1.6 | 71.0 ± 1.6 | 71.5 |" in md
    tex = render_table(results, "tex")
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "72.0 $\\pm$ 1.6" in tex
    parsed = list(csv.DictReader(io.StringIO(render_table(results, "csv"))))
    assert float(parsed[2]["standard_auc"]) == pytest.approx(0.72)
    path = export_table(results, tmp_path / "t.xlsx")
    from openpyxl import load_workbook

    book = load_workbook(path)
    assert book["comparison"]["A1"].value == "Training method"
    assert book["values"].max_row == 4 and book["folds"].max_row == 1 + 3 * FOLDS
    with pytest.raises(ValueError, match="format"):
        export_table(results, tmp_path / "t.docx")


def test_table_command_names_a_missing_results_path(tmp_path, capsys):
    from arfl_studio.cli import main

    assert main(["table", str(tmp_path / "nowhere")]) == 1
    assert "neither a run folder nor a results.json" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, reason",
    [
        ("[1, 2]", "is not a JSON object (a list)"),
        ('"finished"', "is not a JSON object (a str)"),
        ('{"status": "finished", "results": [0.7]}', "its 'results' is not a JSON object"),
        ('{"status": "fini', "is not valid JSON"),
    ],
)
def test_a_fold_manifest_that_is_not_an_object_is_skipped_with_a_reason(tmp_path, capsys, content, reason):
    from arfl_studio.cli import main as cli_main

    out = fake_run(tmp_path)
    path = out / "A" / "fold_1" / "manifest.json"
    path.write_text(content)
    results = collect(out)
    assert next(m for m in results["methods"] if m["key"] == "A")["folds_finished"] == [0, 2, 3, 4]
    assert results["skipped_manifests"] == [{"path": str(path), "reason": results["skipped_manifests"][0]["reason"]}]
    assert reason in results["skipped_manifests"][0]["reason"]
    for command in (["collect", str(out)], ["table", str(out)]):
        assert cli_main(command) == 0
        err = capsys.readouterr().err
        assert f"skipped {path}: " in err and "Traceback" not in err


def test_non_numeric_or_non_finite_fold_results_are_not_used(tmp_path):
    out = fake_run(tmp_path)
    atomic.write_json(
        out / "A" / "fold_0" / "manifest.json", {"status": "finished", "results": {"standard_auc": "high", "adversarial_auc": float("nan")}}
    )
    a = next(m for m in collect(out)["methods"] if m["key"] == "A")
    assert a["standard_auc"]["per_fold"][0] is None and a["adversarial_auc"]["per_fold"][0] is None


@pytest.mark.parametrize("content", ["[]", '{"name": "x"}', "not json"])
def test_table_names_a_results_file_that_is_not_a_results_document(tmp_path, capsys, content):
    from arfl_studio.cli import main as cli_main

    path = tmp_path / "results.json"
    path.write_text(content)
    assert cli_main(["table", str(path)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "arfl-studio collect" in err and "Traceback" not in err
