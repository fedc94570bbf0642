"""Localisation over a run: maps registered to the lesion through the geometry, and the CLI table."""

from __future__ import annotations

import csv
import json

import pytest

from arfl_studio.cli import main
from arfl_studio.data import PreprocessSettings
from arfl_studio.data.datasets.lesions import Lesion
from arfl_studio.experiments import run_experiment
from arfl_studio.experiments.localisation_run import measure_image
from lesion_phantom import BrightSpotModel, write_phantom
from test_experiments import tiny_config


@pytest.fixture(scope="module")
def lesion_folder(tmp_path_factory):
    """A folder + labels CSV + lesions.csv of phantom films: 8 women, L and R MLO, one lesion each."""
    root = tmp_path_factory.mktemp("lesion_data")
    labels, lesions = [["path", "patient", "label"]], [["path", "lesion_type", "pathology", "x", "y", "radius"]]
    for p in range(8):
        for side in ("L", "R"):
            rel = f"images/p{p}_{side}.dcm"
            (root / "images").mkdir(exist_ok=True)
            _path, (row, col), _breast = write_phantom(root / rel, side, "MLO", shape=(150, 110))
            label = "malignant" if p % 2 else "benign"
            labels.append([rel, f"W{p}", label])
            lesions.append([rel, "SPIC", label, str(col), str(row), "8"])
    for name, rows in (("labels.csv", labels), ("lesions.csv", lesions)):
        with open(root / name, "w", newline="") as handle:
            csv.writer(handle).writerows(rows)
    return root


@pytest.mark.parametrize("side", ["L", "R"])
@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_a_model_that_looks_at_the_lesion_scores_on_the_native_grid(tmp_path, side, fit):
    from arfl_studio.data import ImageRecord

    path, (row, col), _ = write_phantom(tmp_path / "x.dcm", side, "MLO")
    record = ImageRecord(
        path=path,
        rel_path="x.dcm",
        patient_id="P",
        laterality=side,
        view="MLO",
        label=1,
        lesions=(Lesion("mass", centre=(float(row), float(col)), radius=10.0),),
    )
    settings = PreprocessSettings(size=(96, 64), channels=1, fit=fit)
    spec = type("Spec", (), {"in_channels": 1})()
    scores, facts = measure_image(record, {"bright": (BrightSpotModel().eval(), spec)}, settings, "gradient", 3.0)
    result = scores["bright"]
    # a flip, crop or resize not undone would move the peak off the lesion
    assert result.pointing == 1.0 and result.energy_inside > 5 * result.chance
    assert result.energy_off_breast < 0.05
    assert facts["pixel_spacing_mm"] == [0.1, 0.1] and facts["lesions"] == 1


def test_cli_localisation_table_for_each_method_on_held_out_patients(lesion_folder, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(
        data={"source": None, "root": str(lesion_folder), "cache_dir": str(tmp_path / "cache")},
        preprocess={"size": [48, 32], "channels": 1, "crop": "breast"},
        training={"epochs": 1, "batch_size": 8},
        methods=["A", "F"],
    )
    run_experiment(config, out)
    splits = json.loads((out / "splits.json").read_text())
    assert all(r.get("lesions") for r in splits["records"])  # the marks travel with the run folder
    doc_path, table = tmp_path / "loc.json", tmp_path / "loc.csv"
    assert main(["saliency", str(out), "--localisation", "--json", str(doc_path), "--table", str(table)]) == 0
    doc = json.loads(doc_path.read_text())
    assert [r["method"] for r in doc["rows"]] == ["A", "F"]
    assert all(r["images"] == 16 for r in doc["rows"])  # every held-out image has a lesion
    assert {i["fold"] for i in doc["images"]} == {0, 1}
    held = {r["rel_path"] for fold in splits["test_indices"] for r in [splits["records"][i] for i in fold]}
    assert {i["path"] for i in doc["images"]} == held
    assert doc["rows"][0]["chance"] == doc["rows"][1]["chance"] > 0  # same images, same chance
    (test,) = doc["paired_tests"]
    assert (test["first"], test["second"], test["images"]) == ("A", "F", 16)
    with open(table, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][0] == "Method" and [r[0] for r in rows[1:]] == ["A", "F"]
    assert doc["label_rule"] == splits["label_rule"] and doc["label_rule"]  # how the run's labels were derived
    from arfl_studio.experiments.localisation_run import render_table

    assert f"labels: {doc['label_rule']}" in render_table(doc, "md")
    # another dataset with lesion marks, scored by one fold's models
    assert (
        main(
            [
                "saliency",
                str(out),
                "--localisation",
                "--data",
                str(lesion_folder),
                "--model",
                "F",
                "--limit",
                "3",
                "--json",
                str(doc_path),
                "--force",
            ]
        )
        == 0
    )
    doc = json.loads(doc_path.read_text())
    assert [r["images"] for r in doc["rows"]] == [3] and "fold 1" in doc["evaluated_on"]
    assert doc["label_rule"]  # the scanned dataset's own rule


def test_cli_localisation_refuses_a_run_without_lesion_marks(tmp_path, capsys):
    out = tmp_path / "run"
    run_experiment(tiny_config(training={"epochs": 1}, methods=["A"]), out)
    assert main(["saliency", str(out), "--localisation"]) == 2
    assert "no image with a positioned lesion" in capsys.readouterr().err
