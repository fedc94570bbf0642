"""``run --final``: one model per method on every patient, threshold on held-out training patients;
and the CV's AUC per ``[evaluation] unit``."""

import json

import numpy as np
import pytest
import tomli_w
import torch
from sklearn.metrics import roc_auc_score

from arfl_studio.cli import main as cli_main
from arfl_studio.evaluation.units import aggregate
from arfl_studio.experiments import run_access, run_experiment
from arfl_studio.experiments.result_tables import render_table
from arfl_studio.experiments.run_access import FoldModel
from arfl_studio.training.threshold import HOLDOUT, choose_threshold, score_images
from test_experiments import tiny_config


def _logits(run_dir, fold, records):
    model, spec = run_access.load_fold_model(run_dir, "A", fold)
    data = run_access.run_dataset(run_dir, records, spec.in_channels)
    targets, logits = score_images(model.eval(), torch.utils.data.DataLoader(data, batch_size=64))
    return np.asarray(targets), np.asarray(logits)


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("final")
    config = root / "tiny.toml"
    config.write_text(tomli_w.dumps(tiny_config(training={"epochs": 1, "threshold_holdout": 0.25}, methods=["A"])))
    assert cli_main(["run", str(config), "--out", str(root / "run"), "--final", "--quiet"]) == 0
    return root / "run"


def test_final_model_trains_on_every_patient_and_loads(final_run, capsys):
    assert run_access.final_models(final_run) == [FoldModel("A", None)]
    assert FoldModel("A", None).label() == "A, final"
    assert all(m.fold is not None for m in run_access.fold_models(final_run))  # folds list only folds
    manifest = json.loads((final_run / "A" / "final" / "manifest.json").read_text())
    records = json.loads((final_run / "splits.json").read_text())["records"]
    assert manifest["status"] == "finished" and manifest["final"] is True and manifest["test_images"] == 0
    assert manifest["train_images"] + manifest["threshold_images"] == len(records)  # every patient, no test fold
    model, spec = run_access.load_fold_model(final_run, "A", None)
    assert model(torch.zeros(2, spec.in_channels, 32, 32)).shape[0] == 2
    run_manifest = json.loads((final_run / "manifest.json").read_text())
    assert run_manifest["finals_run"] == [["A"]]


def test_final_threshold_is_chosen_on_held_out_training_patients(final_run):
    manifest = json.loads((final_run / "A" / "final" / "manifest.json").read_text())
    splits = json.loads((final_run / "splits.json").read_text())
    held = set(manifest["threshold_indices"])
    assert held and len(held) == manifest["threshold_images"]
    held_patients = {splits["records"][i]["patient_id"] for i in held}
    trained_patients = {r["patient_id"] for i, r in enumerate(splits["records"]) if i not in held}
    assert held_patients.isdisjoint(trained_patients)  # whole patients are held out
    threshold = run_access.load_fold_threshold(final_run, "A", None)
    assert threshold.chosen_on == HOLDOUT and threshold.n_images == len(held)
    # the stored threshold is what the rule picks on exactly those patients' scores
    train, test = run_access.fold_records(final_run, 0)  # together: every record of the run
    by_path = {r.rel_path: r for r in train + test}
    held_records = [by_path[splits["records"][i]["rel_path"]] for i in sorted(held)]
    targets, logits = _logits(final_run, None, held_records)
    assert choose_threshold(targets, logits, "youden").logit == pytest.approx(threshold.logit, abs=1e-5)


def test_cv_auc_per_patient_aggregates_the_fold_models_scores(tmp_path):
    out = tmp_path / "patient"
    run_experiment(tiny_config(training={"epochs": 1}, evaluation={"unit": "patient"}, methods=["A"]), out)
    test = run_access.fold_records(out, 0)[1]
    results = json.loads((out / "A" / "fold_0" / "manifest.json").read_text())["results"]
    targets, logits = _logits(out, 0, test)
    ids, unit_logits, unit_labels = aggregate(test, logits, targets, "patient")
    assert results["unit"] == "patient" and results["units"] == len({r.patient_id for r in test}) == len(ids)
    assert results["standard_auc"] == pytest.approx(roc_auc_score(unit_labels, unit_logits), abs=1e-6)
    assert results["image_standard_auc"] == pytest.approx(roc_auc_score(targets, logits), abs=1e-6)
    assert "per patient" in render_table(out, "md")


def test_a_final_model_stopped_while_its_threshold_is_chosen_resumes_straight_to_it(tmp_path, monkeypatch):
    import threading

    from arfl_studio.experiments import final_run as final_module

    config = tiny_config(training={"epochs": 1, "threshold_holdout": 0.25}, methods=["A"])
    cancel, real = threading.Event(), final_module.choose_threshold

    def stop_during_threshold(*args, **kwargs):  # Stop pressed as the threshold choice starts
        cancel.set()
        return real(*args, **kwargs)

    monkeypatch.setattr(final_module, "choose_threshold", stop_during_threshold)
    result = run_experiment(config, tmp_path / "run", final=True, cancel=cancel)
    final = tmp_path / "run" / "A" / "final"
    assert result.status == "cancelled" and result.finals == []
    assert json.loads((final / "manifest.json").read_text())["status"] == "cancelled"
    assert not (final / "model.pt").exists() and (final / "resume.pt").exists()  # the trained epoch is kept
    epochs = (final / "metrics.jsonl").read_text()
    monkeypatch.undo()
    again = run_experiment(config, tmp_path / "run", final=True)
    assert again.status == "finished" and run_access.final_models(tmp_path / "run") == [FoldModel("A", None)]
    assert (final / "metrics.jsonl").read_text() == epochs  # not trained again: straight to the threshold
    assert run_access.load_fold_threshold(tmp_path / "run", "A", None).chosen_on == HOLDOUT
