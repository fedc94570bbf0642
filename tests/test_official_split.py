"""[cv] split = "official": the dataset's own train/test split as one fold, the patients in both
official sets left out of training, refused on data without one, and named in every table."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

import pytest
from test_experiments import tiny_config

from arfl_studio.data.datasets.splits import official_split
from arfl_studio.experiments import ExperimentError, collect, run_experiment
from arfl_studio.experiments.result_tables import render_table
from arfl_studio.experiments.sources import SyntheticSource

VINDR_RULE = "breast-level_annotations.csv breast_birads: BI-RADS 4, 5 = malignant (positive), 1, 2 = benign (negative)"


class OfficialSource(SyntheticSource):
    """Synthetic images whose records carry a split as a scanned CBIS-DDSM / VinDr folder's do:
    patients S0000-S0007 train, S0008-S0011 test, and S0001 in both (one image each side)."""

    def __init__(self, layout: str = "cbis-ddsm", label_rule: str = "case-description CSVs 'pathology'"):
        super().__init__(24, (32, 32), 1, 0)
        self._records = [
            replace(r, split="test" if i >= 16 or i == 3 else ("training" if layout == "vindr" else "train"))
            for i, r in enumerate(self._records)
        ]
        self.scan_summary = {"layout": layout, "label_rule": label_rule}


def test_official_split_keeps_the_test_set_and_leaves_the_overlap_out_of_training():
    records = OfficialSource().records()
    split = official_split(records)
    assert split.overlap == ["S0001"]
    assert [r.rel_path for r in split.left_out] == ["synthetic/2"]  # S0001's training image
    tested = {split.records[i].rel_path for i in split.test}
    assert tested == {r.rel_path for r in records if r.split == "test"}  # the test set as published
    trained = {str(r.patient_id) for i, r in enumerate(split.records) if i not in set(split.test)}
    assert not trained & {str(split.records[i].patient_id) for i in split.test}


def test_official_split_is_refused_without_one_and_on_images_outside_both_sets():
    plain = SyntheticSource(8, (8, 8), 1, 0).records()
    with pytest.raises(ValueError, match="no official train/test split"):
        official_split(plain)
    mixed = [replace(r, split="train" if i else None) for i, r in enumerate(OfficialSource().records())]
    with pytest.raises(ValueError, match="neither official set"):
        official_split(mixed)


def test_an_official_split_run_is_one_fold_and_every_table_names_the_split(tmp_path):
    out = tmp_path / "run"
    config = tiny_config(cv={"folds": 2, "seed": 0, "split": "official"}, training={"epochs": 1})
    result = run_experiment(config, out, source=OfficialSource())
    assert result.status == "finished"
    splits = json.loads((out / "splits.json").read_text())
    assert splits["split"] == "official" and splits["folds"] == 1 and len(splits["test_indices"]) == 1
    assert splits["patients_in_both_official_sets"] == ["S0001"] and splits["left_out_of_training"] == ["synthetic/2"]
    assert sorted(splits["records"][i]["rel_path"] for i in splits["test_indices"][0]) == sorted(
        f"synthetic/{i}" for i in [3, *range(16, 24)]
    )
    assert (out / "F" / "fold_0" / "manifest.json").is_file() and not (out / "F" / "fold_1").exists()
    results = collect(out)
    assert results["folds"] == 1 and results["data"]["split"] == "official"
    for fmt in ("md", "tex"):
        text = render_table(results, fmt)
        assert "official split" in text and "test_set.csv" in text.replace("\\_", "_"), fmt
        assert "1 patient(s) in both official sets" in text
    rows = list(csv.DictReader(io.StringIO(render_table(results, "csv"))))
    assert all("CBIS-DDSM official split" in row["split"] for row in rows)


def test_patient_cv_tables_name_the_split_and_a_birads_label_rule(tmp_path):
    out = tmp_path / "run"
    result = run_experiment(tiny_config(training={"epochs": 1}), out, source=OfficialSource("vindr", VINDR_RULE))
    assert result.status == "finished"
    results = collect(out)
    md = render_table(results, "md")
    assert "patient-level 2-fold cross-validation" in md
    assert f"Labels: {VINDR_RULE} (VinDr-Mammo layout)" in md
    rows = list(csv.DictReader(io.StringIO(render_table(results, "csv"))))
    assert rows and all(row["labels"] == VINDR_RULE for row in rows)
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(render_table(results, "xlsx"))).active
    assert any(VINDR_RULE in str(c.value) for row in sheet.iter_rows() for c in row if c.value)


def test_official_split_on_data_without_one_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    config = tiny_config(cv={"folds": 2, "seed": 0, "split": "official"})
    with pytest.raises(ExperimentError, match="official"):
        run_experiment(config, out)
    assert not (out / "config.toml").exists()


def test_the_cli_run_takes_the_split_and_refuses_official_on_data_without_one(tmp_path, capsys):
    import tomli_w

    from arfl_studio.cli import main as cli_main

    config = tmp_path / "tiny.toml"
    config.write_text(tomli_w.dumps(tiny_config()))
    assert cli_main(["run", str(config), "--out", str(tmp_path / "run"), "--split", "official"]) == 1
    err = capsys.readouterr().err
    assert '[cv] split = "official" cannot be used' in err and "no official train/test split" in err
    assert not (tmp_path / "run" / "config.toml").exists()


def test_the_external_validation_table_names_a_birads_label_rule():
    from arfl_studio.experiments.external import render_table as external_table

    doc = {
        "unit_words": "per image",
        "images": 4,
        "rows": [],
        "evaluation": {"kind": "pgd", "eps": 1e-4, "steps": 7, "attacked": False, "from": "the run's [evaluation]"},
        "data": {"layout": "vindr", "label_rule": VINDR_RULE},
    }
    assert f"Labels: {VINDR_RULE}." in external_table(doc)


def test_the_dataset_panes_preview_shows_the_official_split_as_training_will_use_it():
    from arfl_studio.gui.panes.dataset_tasks import split_task

    records = OfficialSource().records()
    preview = split_task(records, 5, "official")(None, None)
    assert preview["error"] is None
    train, test = preview["rows"]
    assert (train["fold"], test["fold"]) == ("train", "test")
    published_test = [r for r in records if r.split == "test"]
    assert test["images"] == len(published_test)  # the test set as published
    assert train["images"] == len(records) - len(published_test) - 1  # S0001's training image left out
    assert train["patients"] + test["patients"] == len({r.patient_id for r in records})
    assert "1 patient(s) are in both official sets" in preview["note"]
    plain = split_task(SyntheticSource(8, (8, 8), 1, 0).records(), 2, "official")(None, None)
    assert plain["rows"] == [] and "no official train/test split" in plain["error"]
    assert len(split_task(records, 3)(None, None)["rows"]) == 3  # patient-level folds otherwise
