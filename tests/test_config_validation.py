"""Hostile config values get one clear message (key, value, what is allowed), never a traceback,
and nothing is written to --out before the config and the data have been checked (issue 11, 6/7/9)."""

from __future__ import annotations

import json

import pytest

from arfl_studio.cli import main as cli_main
from arfl_studio.experiments import ExperimentError, load_config, run_experiment
from arfl_studio.training.methods import SettingError

from test_experiments import tiny_config

INF = float("inf")


@pytest.mark.parametrize("overrides, message", [
    ({"methods": [{"key": "F", "attack": {"epsilon": 0.1}}]},
     r"unknown settings in \[methods.attack\] \(method \"F\"\): \['epsilon'\]; allowed: .*'eps'"),
    ({"methods": [{"key": "X", "mix_ratio": 0.5, "attack": {"epsilon": 0.1}}]},
     r"unknown settings in \[methods.attack\] \(method \"X\"\): \['epsilon'\]"),
    ({"training": {"epochs": "three"}}, r'\[training\] epochs = "three" is not allowed: it must be an integer'),
    ({"training": {"epochs": True}}, r"\[training\] epochs = true is not allowed: it must be an integer"),
    ({"training": {"lr": "fast"}}, r'\[training\] lr = "fast" is not allowed: it must be a finite number'),
    ({"training": {"lr": float("nan")}}, r"\[training\] lr = nan is not allowed"),
    ({"training": {"amp": 1}}, r"\[training\] amp = 1 is not allowed: it must be true or false"),
    ({"cv": {"folds": 2.5}}, r"\[cv\] folds = 2.5 is not allowed: it must be an integer"),
    ({"model": {"backbone": "small_cnn", "in_channels": 1, "width": 0}}, r"\[model\] width = 0 is not allowed: it must be >= 1"),
    ({"preprocess": {"size": "big"}}, r'\[preprocess\] size = "big" is not allowed: it must be \[rows, columns\]'),
    ({"preprocess": {"size": [1, 1]}}, r"\[preprocess\] size = \[1, 1\] is not allowed"),
    ({"evaluation": {"eps": INF}}, r"\[evaluation\] eps = inf is not allowed: it must be a finite number"),
    ({"methods": [{"key": "F", "attack": {"eps": INF}}]},
     r"\[methods.attack\] \(method \"F\"\) eps = inf is not allowed: it must be a finite number"),
    ({"methods": [{"key": "F", "mix_ratio": "half"}]}, r'\[\[methods\]\] \(key "F"\) mix_ratio = "half" is not allowed'),
    ({"data": {"source": None, "demo": True, "demo_patients": 0}}, r"\[data\] demo_patients = 0 is not allowed: it must be >= 1"),
    ({"sweep": {"mix_ratio": []}}, r"\[sweep\] sweeps nothing \(mix_ratio = \[\]\)"),
    ({"sweep": {"eps": [0.01, INF]}}, r"\[sweep\] eps = \[0.01, inf\] is not allowed"),
    ({"methods": []}, r"methods = \[\] is not allowed: list at least one method"),
    ({"training": 3}, r"\[training\] must be a table of settings, got 3"),
    ({"evaluation": {"clamp": [1.0, 0.0]}}, r"\[evaluation\] clamp = \[1.0, 0.0\] is not allowed"),
    ({"training": {"seeds": ["a"]}}, r'\[training\] seeds = \["a"\] is not allowed: it must be a list of values, each an integer'),
    ({"training": {"lr_schedule": "cosin"}}, r"\[training\] lr_schedule must be one of \('constant', 'cosine'\), got 'cosin'"),
    ({"training": {"threshold_holdout": 0.8}}, r"\[training\] threshold_holdout = 0.8 is not allowed: it must be >= 0 and <= 0.5"),
    ({"training": {"threshold_holdout": "some"}}, r'\[training\] threshold_holdout = "some" is not allowed'),
])
def test_hostile_values_are_named_with_what_is_allowed(overrides, message):
    with pytest.raises(SettingError, match=message):
        load_config(tiny_config(**overrides))


def test_a_valid_config_still_round_trips(tmp_path):
    config = load_config(tiny_config(sweep={"mix_ratio": [0.25, 0.75]}))
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml())
    assert load_config(path).to_dict() == config.to_dict()


TOML = """
name = "hostile"
[data]
source = "synthetic"
synthetic_samples = 24
synthetic_size = [32, 32]
[preprocess]
size = [32, 32]
channels = 1
crop = "none"
[model]
backbone = "small_cnn"
in_channels = 1
width = 4
[training]
epochs = {epochs}
batch_size = 8
device = "cpu"
[cv]
folds = 2
[evaluation]
eps = {eval_eps}
steps = 2
[[methods]]
key = "A"
"""


@pytest.mark.parametrize("epochs, eval_eps, expected", [
    ('"three"', "1e-3", '[training] epochs = "three" is not allowed'),
    ("true", "1e-3", "[training] epochs = true is not allowed"),
    ("1", "inf", "[evaluation] eps = inf is not allowed"),
])
def test_run_command_refuses_before_writing(tmp_path, capsys, epochs, eval_eps, expected):
    config = tmp_path / "config.toml"
    config.write_text(TOML.format(epochs=epochs, eval_eps=eval_eps))
    out = tmp_path / "out"
    assert cli_main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not out.exists()


def test_a_run_that_cannot_open_its_data_writes_nothing_and_the_fixed_config_reuses_the_folder(tmp_path):
    """Issue 11.9: config.toml used to be written first, so the fixed config was refused as 'different'."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("the user's")
    bad = tiny_config(data={"source": None, "root": str(tmp_path / "no-such-dataset")}, training={"epochs": 1},
                      methods=["A"])
    with pytest.raises((ExperimentError, SettingError)):
        run_experiment(bad, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    fixed = tiny_config(training={"epochs": 1}, methods=["A"])
    assert run_experiment(fixed, out).status == "finished"
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"
    assert (out / "notes.txt").read_text() == "the user's"
    assert not (out / ".locks").exists() and not (out / ".run.lock").exists()
