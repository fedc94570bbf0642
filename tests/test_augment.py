"""Training augmentation: in range, background kept black, repeatable from the seed, and wired into runs."""

from __future__ import annotations

import json

import pytest
import torch

from arfl_studio.experiments import load_config, run_experiment
from arfl_studio.training.augment import Augmentation, augmentation
from arfl_studio.training.methods import SettingError
from test_experiments import tiny_config


def breast_batch() -> torch.Tensor:
    x = torch.zeros(6, 1, 48, 40)
    x[:, :, 8:40, :24] = torch.linspace(0.2, 0.9, 24)  # a breast against the chest wall (left)
    return x


def test_stays_in_range_keeps_the_background_black_and_changes_each_image():
    torch.manual_seed(0)
    x = breast_batch()
    y = Augmentation()(x)
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert float(y[:, :, :, 34:].abs().max()) == 0.0  # far from the breast: still background
    assert all(not torch.allclose(y[i], x[i]) for i in range(len(x)))
    assert not torch.allclose(y[0], y[1])  # one draw per image


def test_repeatable_from_the_seed():
    torch.manual_seed(3)
    a = Augmentation()(breast_batch())
    torch.manual_seed(3)
    b = Augmentation()(breast_batch())
    assert torch.equal(a, b)


def test_none_is_the_identity_and_unknown_names_are_refused():
    assert augmentation("none") is None
    with pytest.raises(SettingError, match="augment must be one of"):
        load_config(tiny_config(training={"augment": "heavy"}))


def test_a_run_trains_on_augmented_batches(tmp_path):
    plain, augmented = tmp_path / "plain", tmp_path / "augmented"
    run_experiment(tiny_config(training={"epochs": 1}, methods=["A"]), plain)
    run_experiment(tiny_config(training={"epochs": 1, "augment": "standard"}, methods=["A"]), augmented)
    loss = [json.loads((out / "A" / "fold_0" / "metrics.jsonl").read_text().splitlines()[0])["losses"] for out in (plain, augmented)]
    assert loss[0] != loss[1]  # same seed, same images: only the augmentation differs
