"""Evaluation units (evaluation/units.py): per image, per breast (views' mean logit), per patient (max over breasts)."""

from types import SimpleNamespace

import numpy as np
import pytest

from arfl_studio.evaluation.units import aggregate


def _rec(patient, side):
    return SimpleNamespace(patient_id=patient, laterality=side)


# P1: right breast malignant in its MLO view only; left benign. P2: both benign. P3: one image without laterality.
RECORDS = [
    _rec("P1", "R"),
    _rec("P1", "R"),
    _rec("P1", "L"),
    _rec("P1", "L"),
    _rec("P2", "L"),
    _rec("P2", "R"),
    _rec("P3", None),
    _rec("P3", "L"),
]
LOGITS = [1.0, 3.0, 5.0, -1.0, 0.5, 0.7, 9.0, -2.0]
LABELS = [0, 1, 0, 0, 0, 0, 1, 0]


def test_image_unit_is_the_identity():
    ids, logits, labels = aggregate(RECORDS, LOGITS, LABELS, "image")
    assert len(ids) == 8 and np.array_equal(logits, LOGITS) and np.array_equal(labels, LABELS)


def test_breast_is_mean_logit_of_its_views_and_malignant_if_any_view_is():
    ids, logits, labels = aggregate(RECORDS, LOGITS, LABELS, "breast")
    got = dict(zip(ids, zip(logits, labels)))
    assert got["P1|R"] == (pytest.approx(2.0), 1)  # one malignant view makes the breast malignant
    assert got["P1|L"] == (pytest.approx(2.0), 0)
    assert got["P2|L"] == (pytest.approx(0.5), 0) and got["P2|R"] == (pytest.approx(0.7), 0)
    assert len(ids) == 6  # the image without laterality is a breast of its own, never merged with P3|L
    assert sum(i.startswith("P3|") for i in ids) == 2


def test_patient_is_max_over_breasts_and_malignant_if_any_breast_is():
    ids, logits, labels = aggregate(RECORDS, LOGITS, LABELS, "patient")
    got = dict(zip(ids, zip(logits, labels)))
    assert ids == ["P1", "P2", "P3"]
    assert got["P1"] == (pytest.approx(2.0), 1)  # max(mean R = 2, mean L = 2), malignant through R
    assert got["P2"] == (pytest.approx(0.7), 0)
    assert got["P3"] == (pytest.approx(9.0), 1)


def test_mismatched_lengths_and_unknown_units_are_refused():
    with pytest.raises(ValueError, match="records"):
        aggregate(RECORDS, LOGITS[:-1], LABELS, "breast")
    with pytest.raises(ValueError, match="unit"):
        aggregate(RECORDS, LOGITS, LABELS, "view")


def test_unit_is_a_validated_evaluation_setting():
    from arfl_studio.experiments.config import load_config
    from arfl_studio.training.methods import SettingError
    from test_experiments import tiny_config

    config = load_config(tiny_config(evaluation={"unit": "breast"}))
    assert config.evaluation.unit == "breast" and load_config(tiny_config()).evaluation.unit == "image"
    assert 'unit = "breast"' in config.to_toml()
    with pytest.raises(SettingError, match="unit"):
        load_config(tiny_config(evaluation={"unit": "view"}))


def test_unit_summary_counts_units_and_falls_back_to_images_when_an_image_was_skipped():
    from arfl_studio.experiments.fold_evaluation import unit_summary

    y, s = np.array(LABELS, float), np.array(LOGITS)
    summary = unit_summary(RECORDS, y, s, s - 1, unit="patient", threshold=1.0)
    assert (summary["unit"], summary["units"], summary["positives"], summary["negatives"]) == ("patient", 3, 2, 1)
    assert "image_standard_auc" in summary and summary["standard_sensitivity"] == 1.0
    skipped = unit_summary(RECORDS, y[:-1], s[:-1], None, unit="breast")
    assert skipped["unit"] == "image" and skipped["units"] == 7 and "grouped" in skipped["unit_note"]
