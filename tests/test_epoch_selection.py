"""Early stopping on the inner validation split (select_epoch = "validation-auc"): the stored
model is the best epoch's on held-out training patients, never chosen on the test fold, and a
resumed fold selects as an uninterrupted one."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from arfl_studio.experiments import fold_records, load_config, load_fold_model, run_experiment
from arfl_studio.experiments.sources import open_source, record_from_dict
from arfl_studio.training.events import EpochEvent
from arfl_studio.training.methods import SettingError
from arfl_studio.training.threshold import score_images


def config(**training) -> dict:
    return {
        "name": "select",
        "data": {"source": "synthetic", "synthetic_samples": 48, "synthetic_size": [16, 16]},
        "preprocess": {"size": [16, 16], "channels": 1, "crop": "none"},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {
            "epochs": 4,
            "batch_size": 8,
            "lr": 3e-3,
            "device": "cpu",
            "validate_adversarial_every": 0,
            "threshold_holdout": 0.3,
            "select_epoch": "validation-auc",
            **training,
        },
        "cv": {"folds": 2, "seed": 0},
        "evaluation": {"eps": 1e-3, "steps": 1},
        "methods": [{"key": "A"}],
    }


def _inner_patients_auc(out, fold: int) -> float:
    manifest = json.loads((out / "A" / f"fold_{fold}" / "manifest.json").read_text())
    splits = json.loads((out / "splits.json").read_text())
    records = [record_from_dict(splits.get("root"), r) for r in splits["records"]]
    inner = [records[i] for i in manifest["threshold_indices"]]
    assert {r.patient_id for r in inner}.isdisjoint({r.patient_id for r in fold_records(out, fold)[1]})
    model, _ = load_fold_model(out, "A", fold)
    images = open_source(load_config(out / "config.toml")).dataset(inner)
    targets, logits = score_images(model, [(x.unsqueeze(0), torch.tensor([t])) for x, t in images])
    return float(roc_auc_score(np.asarray(targets), np.asarray(logits)))


def test_stored_model_is_the_best_inner_validation_epoch(tmp_path):
    out = tmp_path / "run"
    assert run_experiment(config(), out).status == "finished"
    for fold in (0, 1):
        manifest = json.loads((out / "A" / f"fold_{fold}" / "manifest.json").read_text())
        lines = [json.loads(line) for line in (out / "A" / f"fold_{fold}" / "metrics.jsonl").read_text().splitlines()]
        inner = [row["inner_validation_auc"] for row in lines]
        assert len(inner) == 4
        best = int(np.argmax(inner)) + 1  # the first of tied maxima
        assert manifest["selected_epoch"] == best and manifest["selection_auc"] == pytest.approx(max(inner))
        assert manifest["threshold_images"] > 0
        assert _inner_patients_auc(out, fold) == pytest.approx(max(inner), abs=1e-6)


def test_resumed_fold_selects_the_same_epoch_and_weights(tmp_path):
    reference = tmp_path / "reference"
    run_experiment(config(), reference)
    out, cancel = tmp_path / "resumed", threading.Event()

    def stop_after_second_epoch(event):
        inner = getattr(event, "event", None)
        if getattr(event, "fold", None) == 0 and isinstance(inner, EpochEvent) and inner.epoch == 1:
            cancel.set()

    assert run_experiment(config(), out, callback=stop_after_second_epoch, cancel=cancel).status == "cancelled"
    run_experiment(config(), out)
    for fold in (0, 1):
        a = json.loads((reference / "A" / f"fold_{fold}" / "manifest.json").read_text())
        b = json.loads((out / "A" / f"fold_{fold}" / "manifest.json").read_text())
        assert a["selected_epoch"] == b["selected_epoch"]
        ma, _ = load_fold_model(reference, "A", fold)
        mb, _ = load_fold_model(out, "A", fold)
        assert all(torch.equal(x, y) for x, y in zip(ma.state_dict().values(), mb.state_dict().values()))


def test_selection_needs_held_out_training_patients():
    with pytest.raises(SettingError, match="needs threshold_holdout > 0"):
        load_config(config(threshold_holdout=0.0))
    with pytest.raises(SettingError, match="select_epoch must be one of"):
        load_config(config(select_epoch="test-auc"))
