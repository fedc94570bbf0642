"""The decision threshold: chosen on training scores, stored with the checkpoint, read back."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from arfl_studio.experiments.config import load_config
from arfl_studio.models.registry import (
    CheckpointError,
    DecisionThreshold,
    ModelSpec,
    build_model,
    load_checkpoint,
    load_threshold,
    save_checkpoint,
)
from arfl_studio.training.losses import classification_loss, fold_pos_weight
from arfl_studio.training.methods import SettingError
from arfl_studio.training.threshold import ThresholdRule, choose_threshold, fit_threshold, operating_point


def _imbalanced_scores(seed=0):
    """A model whose logits are shifted negative (a 3:1 benign fold under plain BCE): 0 calls few cancers."""
    rng = np.random.default_rng(seed)
    targets = np.r_[np.zeros(300), np.ones(100)]
    logits = np.r_[rng.normal(-3.0, 1.0, 300), rng.normal(-1.0, 1.0, 100)]
    return targets, logits


def test_youden_recovers_sensitivity_that_logit_zero_loses():
    targets, logits = _imbalanced_scores()
    at_zero = operating_point(targets, logits, 0.0)
    assert at_zero["sensitivity"] < 0.3  # the failure the issue reports
    chosen = choose_threshold(targets, logits, "youden")
    assert chosen.rule == "youden" and -3.0 < chosen.logit < -1.0
    assert chosen.sensitivity > 0.7 and chosen.specificity > 0.7
    # the recorded rates are the strict rule's rates at the stored logit, and J is the maximum over all cuts
    assert operating_point(targets, logits, chosen.logit)["sensitivity"] == chosen.sensitivity
    best_j = max(sum(operating_point(targets, logits, t)[k] for k in ("sensitivity", "specificity")) for t in np.r_[logits, logits - 1e-9])
    assert chosen.sensitivity + chosen.specificity == pytest.approx(best_j)


def test_target_sensitivity_and_specificity_are_met_on_the_training_scores():
    targets, logits = _imbalanced_scores(1)
    for target in (0.5, 0.9, 1.0):
        chosen = choose_threshold(targets, logits, {"sensitivity": target})
        assert chosen.sensitivity >= target
        # the most specific such threshold: one step higher misses the target
        higher = np.sort(logits[logits > chosen.logit])[0] + 1e-9
        assert operating_point(targets, logits, higher)["sensitivity"] < target
        chosen = choose_threshold(targets, logits, {"specificity": target})
        assert chosen.specificity >= target
    assert choose_threshold(targets, logits, {"logit": 0.25}).logit == 0.25


def test_separated_scores_put_the_threshold_in_the_gap_and_one_class_falls_back():
    chosen = choose_threshold([0, 0, 1, 1], [-2.0, -1.0, 3.0, 5.0])
    assert chosen.logit == pytest.approx(1.0) and chosen.sensitivity == chosen.specificity == 1.0
    fallback = choose_threshold([0, 0, 0], [1.0, 2.0, 3.0])
    assert fallback.logit == 0.0 and "one class" in fallback.note


@pytest.mark.parametrize(
    "bad",
    [
        "median",
        {"sensitivity": 1.5},
        {"sensitivity": 0},
        {"youden": 1},
        {"sensitivity": 0.9, "specificity": 0.9},
        {"logit": float("nan")},
        3,
    ],
)
def test_bad_threshold_settings_are_refused_with_the_key(bad):
    with pytest.raises(SettingError, match="threshold"):
        ThresholdRule.parse(bad)
    with pytest.raises(SettingError, match=r"\[training\] threshold"):
        load_config({"data": {"source": "synthetic"}, "training": {"threshold": bad}})


def test_config_threshold_and_pos_weight_round_trip_through_toml(tmp_path):
    config = load_config({"data": {"source": "synthetic"}, "training": {"threshold": {"sensitivity": 0.9}, "pos_weight": "off"}})
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    again = load_config(path)
    assert again.training.threshold == {"sensitivity": 0.9} and again.training.pos_weight == "off"
    assert load_config({"data": {"source": "synthetic"}}).training.threshold == "youden"
    for bad in (0, -1.0, "on", True):
        with pytest.raises(SettingError, match=r"\[training\] pos_weight"):
            load_config({"data": {"source": "synthetic"}, "training": {"pos_weight": bad}})


def test_pos_weight_balances_the_classes_of_an_imbalanced_fold():
    assert fold_pos_weight("auto", 25, 75) == 3.0
    assert fold_pos_weight("auto", 50, 50) is None and fold_pos_weight("off", 25, 75) is None
    assert fold_pos_weight(2.5, 25, 75) == 2.5
    logits = torch.zeros(4)
    targets = torch.tensor([1.0, 0.0, 0.0, 0.0])
    plain = classification_loss(logits, targets)
    weighted = classification_loss(logits, targets, 3.0)
    # the one malignant sample counts three times: mean over (3 + 3 * 1) / 4 of log 2
    assert weighted.item() == pytest.approx(plain.item() * 6 / 4)


def test_threshold_is_stored_with_the_checkpoint_and_old_checkpoints_default_to_zero(tmp_path):
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    torch.manual_seed(0)
    model = build_model(spec)
    x = torch.rand(12, 1, 16, 16)
    targets = torch.tensor([0.0, 1.0] * 6)
    chosen = fit_threshold(model, [(x[:6], targets[:6]), (x[6:], targets[6:])], "youden")
    path = save_checkpoint(tmp_path / "model.pt", model, spec, chosen)
    stored = load_threshold(path)
    assert stored == chosen and stored.n_images == 12
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["threshold_logit"] == chosen.logit and meta["threshold"]["probability"] == pytest.approx(1 / (1 + np.exp(-chosen.logit)))
    loaded, loaded_spec = load_checkpoint(path)  # the model half is unchanged
    assert loaded_spec == spec

    old = save_checkpoint(tmp_path / "old.pt", model, spec)  # as written before thresholds were stored
    legacy = load_threshold(old)
    assert legacy.logit == 0.0 and legacy.rule == "none" and "no decision threshold" in legacy.note
    assert DecisionThreshold().probability == 0.5

    old.with_suffix(".json").write_text(json.dumps({"model": spec.to_dict(), "threshold": {"logit": "high"}}))
    with pytest.raises(CheckpointError, match="old.json"):
        load_threshold(old)


def _threshold_run(tmp_path, name: str, samples: int, holdout: float):
    from arfl_studio.experiments import run_experiment

    config = {
        "name": name,
        "data": {"source": "synthetic", "synthetic_samples": samples, "synthetic_size": [16, 16]},
        "preprocess": {"size": [16, 16], "channels": 1, "crop": "none"},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {
            "epochs": 1,
            "batch_size": 8,
            "device": "cpu",
            "threshold": {"sensitivity": 1.0},
            "pos_weight": 2.0,
            "validate_adversarial_every": 0,
            "threshold_holdout": holdout,
        },
        "cv": {"folds": 2, "seed": 0},
        "evaluation": {"eps": 1e-3, "steps": 1},
        "methods": [{"key": "A"}],
    }
    out = tmp_path / name
    result = run_experiment(config, out)
    assert result.status == "finished"
    return out, result


def _rescored(out, records):
    from arfl_studio.experiments import load_fold_model
    from arfl_studio.experiments.sources import open_source
    from arfl_studio.training.threshold import score_images

    model, _ = load_fold_model(out, "A", 0)
    images = open_source(load_config(out / "config.toml")).dataset(records)
    return score_images(model, [(x.unsqueeze(0), torch.tensor([t])) for x, t in images])


def _held_patients(out, manifest) -> set[str]:
    """The patients of the manifest's threshold_indices (positions in splits.json's records)."""
    records = json.loads((out / "splits.json").read_text())["records"]
    assert all(str(r["patient_id"]) not in json.dumps(manifest) for r in records)  # no IDs in the manifest
    return {str(records[i]["patient_id"]) for i in manifest["threshold_indices"]}


def test_the_threshold_is_chosen_on_held_out_training_patients_that_do_not_train(tmp_path):
    from arfl_studio.experiments import fold_records, load_fold_threshold
    from arfl_studio.training.threshold import HOLDOUT

    out, _ = _threshold_run(tmp_path, "holdout", samples=80, holdout=0.2)  # 40 patients, 20 per fold
    for fold in (0, 1):
        manifest = json.loads((out / "A" / f"fold_{fold}" / "manifest.json").read_text())
        train, test = fold_records(out, fold)
        held = _held_patients(out, manifest)
        train_patients = {str(r.patient_id) for r in train}
        # about a fifth of the training patients, of both classes, none of them held-out test patients
        assert 2 <= len(held) <= 6 and held < train_patients and not held & {str(r.patient_id) for r in test}
        assert {int(r.label) for r in train if str(r.patient_id) in held} == {0, 1}
        assert manifest["train_images"] + manifest["threshold_images"] == len(train)
        stored = load_fold_threshold(out, "A", fold)
        assert stored.chosen_on == HOLDOUT and stored.n_images == manifest["threshold_images"]
    # re-scoring the held-out training patients with the fold model reproduces the stored threshold
    train, _ = fold_records(out, 0)
    held = _held_patients(out, json.loads((out / "A" / "fold_0" / "manifest.json").read_text()))
    targets, logits = _rescored(out, [r for r in train if str(r.patient_id) in held])
    assert choose_threshold(targets, logits, {"sensitivity": 1.0}, HOLDOUT) == load_fold_threshold(out, "A", 0)


def test_too_few_patients_to_hold_out_fall_back_to_the_training_images_with_a_note(tmp_path):
    from arfl_studio.experiments import fold_records, load_fold_threshold
    from arfl_studio.training.threshold import TRAINING_IMAGES

    out, _ = _threshold_run(tmp_path, "small", samples=24, holdout=0.2)  # 3 patients per class and fold
    stored = load_fold_threshold(out, "A", 0)
    assert stored.chosen_on == TRAINING_IMAGES and "too few patients" in stored.note
    train, _ = fold_records(out, 0)
    assert stored.n_images == len(train)


def test_each_fold_model_stores_the_threshold_chosen_on_its_training_folds(tmp_path):
    from arfl_studio.experiments import fold_records, load_fold_threshold
    from arfl_studio.experiments.result_tables import render_table
    from arfl_studio.training.threshold import TRAINING_IMAGES

    out, result = _threshold_run(tmp_path, "threshold", samples=24, holdout=0.0)  # the paper's protocol
    for fold in (0, 1):
        stored = load_fold_threshold(out, "A", fold)
        assert stored.rule == "sensitivity" and stored.target == 1.0 and stored.sensitivity == 1.0
        assert stored.chosen_on == TRAINING_IMAGES and stored.note == ""
        manifest = json.loads((out / "A" / f"fold_{fold}" / "manifest.json").read_text())
        assert manifest["pos_weight"] == 2.0 and manifest["threshold_images"] == 0
        assert manifest["results"]["threshold"]["logit"] == stored.logit
        assert 0.0 <= manifest["results"]["standard_sensitivity"] <= 1.0
    # chosen on the training folds' images, not the held-out ones: re-scoring them reproduces it
    train, _ = fold_records(out, 0)
    targets, logits = _rescored(out, train)
    stored = load_fold_threshold(out, "A", 0)
    assert stored.n_images == len(train)
    rescored = choose_threshold(targets, logits, {"sensitivity": 1.0}, TRAINING_IMAGES)
    # one image at a time vs the run's batches: the logits agree to float32 rounding, not bit for bit
    assert rescored.logit == pytest.approx(stored.logit, abs=1e-5)
    assert dataclasses.replace(rescored, logit=stored.logit) == stored
    # `arfl-studio attack RUN` scores accuracy, sensitivity, specificity and flips at the stored threshold
    from arfl_studio.cli import main as cli_main

    assert (
        cli_main(
            [
                "attack",
                str(out),
                "--fold",
                "0",
                "--eps",
                "0.001",
                "--steps",
                "1",
                "--no-probes",
                "--large-eps",
                "0",
                "--json",
                str(tmp_path / "attack.json"),
            ]
        )
        == 0
    )
    attack = json.loads((tmp_path / "attack.json").read_text())["evaluations"][0]
    assert attack["threshold_logit"] == load_fold_threshold(out, "A", 0).logit
    row = result.results["methods"][0]
    assert len(row["standard_specificity"]["per_fold"]) == 2
    assert "Sens / spec" in render_table(result.results, "md")
