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


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            {"methods": [{"key": "F", "attack": {"epsilon": 0.1}}]},
            r"unknown settings in \[methods.attack\] \(method \"F\"\): \['epsilon'\]; allowed: .*'eps'",
        ),
        (
            {"methods": [{"key": "X", "mix_ratio": 0.5, "attack": {"epsilon": 0.1}}]},
            r"unknown settings in \[methods.attack\] \(method \"X\"\): \['epsilon'\]",
        ),
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
        (
            {"methods": [{"key": "F", "attack": {"eps": INF}}]},
            r"\[methods.attack\] \(method \"F\"\) eps = inf is not allowed: it must be a finite number",
        ),
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
    ],
)
def test_hostile_values_are_named_with_what_is_allowed(overrides, message):
    with pytest.raises(SettingError, match=message):
        load_config(tiny_config(**overrides))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"source": None, "root": "/data/CMMD", "demo": True}, r'root = "/data/CMMD", demo = true'),
        ({"root": "/data/CMMD"}, r'root = "/data/CMMD", source = "synthetic"'),
        ({"source": "demo", "root": "/data/CMMD"}, r'root = "/data/CMMD", source = "demo"'),
        ({"source": "dataset", "demo": True, "root": None}, r'demo = true, source = "dataset"'),
    ],
)
def test_a_config_naming_two_sources_of_images_is_refused(data, message):
    """Issue 26 item 8: root and demo together silently used one of them."""
    with pytest.raises(SettingError, match=r"\[data\] names more than one source of images \(" + message):
        load_config(tiny_config(data=data))
    # one source, said twice the same way, is fine
    load_config(tiny_config(data={"source": "demo", "demo": True}))
    load_config(tiny_config(data={"source": "dataset", "root": "/data/CMMD"}))


def test_an_unknown_method_key_is_refused_naming_the_known_keys():
    """Issue 26 item 10: [[methods]] key = "Z" trained a standard model called "Custom"."""
    for methods in ([{"key": "Z"}], [{"key": "Z", "name": "my method"}], ["Z"]):
        with pytest.raises(SettingError, match=r"'?Z'?.*A.*B.*C.*D.*E.*F.*G.*H.*I"):
            load_config(tiny_config(methods=methods))
    custom = load_config(tiny_config(methods=[{"key": "Z", "mix_ratio": 0.5}])).methods[0]
    assert custom.mix_ratio == 0.5 and custom.name == "Z"  # defined by the config, named by its key
    assert load_config(tiny_config(methods=[{"key": "Z", "preset": "F"}])).methods[0].mix_ratio == 0.5


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("training", "epochs", 10**20),
        ("training", "batch_size", 10**9),
        ("training", "lr", 1e6),
        ("training", "workers", 10_000),
        ("training", "seed", -1),
        ("training", "momentum", 2.0),
        ("training", "eval_batch_size", 0),
        ("training", "checkpoint_every", 10**12),
        ("training", "pos_weight", 1e300),
        ("cv", "folds", 10**6),
        ("evaluation", "eps", 5.0),
        ("evaluation", "steps", 10**9),
        ("evaluation", "restarts", 10**8),
        ("data", "synthetic_samples", 10**12),
        ("model", "width", 10**6),
    ],
)
def test_absurd_numbers_are_refused_with_their_range(section, key, value):
    """Issue 26 item 12: every config number has a documented range (config_checks.NUMBER_RANGES)."""
    overrides = {section: {key: value}}
    if section == "model":
        overrides = {"model": {"backbone": "small_cnn", "in_channels": 1, key: value}}
    with pytest.raises(SettingError, match=rf"\[{section}\] {key} = .* is not allowed: it must be"):
        load_config(tiny_config(**overrides))


@pytest.mark.parametrize(
    "method",
    [
        {"key": "F", "robust_weight": 1e12},
        {"key": "F", "attack": {"steps": 10**9}},
        {"key": "F", "attack": {"eps": 3.0}},
        {"key": "X", "mix_ratio": 0.5, "trades_beta": 1e9},
    ],
)
def test_absurd_method_numbers_are_refused_naming_the_method(method):
    with pytest.raises(SettingError, match=rf'\(key "{method["key"]}"\)|\(method "{method["key"]}"\)'):
        load_config(tiny_config(methods=[method]))


def test_absurd_sweep_points_are_refused():
    with pytest.raises(SettingError, match=r"\(key \"F_lam1e\+12\"\) robust_weight = 1000000000000.0 is not allowed"):
        load_config(tiny_config(sweep={"robust_weight": [1.0, 1e12]}))


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


@pytest.mark.parametrize(
    "epochs, eval_eps, expected",
    [
        ('"three"', "1e-3", '[training] epochs = "three" is not allowed'),
        ("true", "1e-3", "[training] epochs = true is not allowed"),
        ("1", "inf", "[evaluation] eps = inf is not allowed"),
    ],
)
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
    bad = tiny_config(data={"source": None, "root": str(tmp_path / "no-such-dataset")}, training={"epochs": 1}, methods=["A"])
    with pytest.raises((ExperimentError, SettingError)):
        run_experiment(bad, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    fixed = tiny_config(training={"epochs": 1}, methods=["A"])
    assert run_experiment(fixed, out).status == "finished"
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"
    assert (out / "notes.txt").read_text() == "the user's"
    assert not (out / ".locks").exists() and not (out / ".run.lock").exists()


def test_data_label_policies_are_checked_and_reach_the_scan(monkeypatch, tmp_path):
    with pytest.raises(SettingError, match="cmmd_missing"):
        load_config(tiny_config(data={"source": None, "root": str(tmp_path), "cmmd_missing": "maybe"}))
    with pytest.raises(SettingError, match="not BI-RADS categories"):
        load_config(tiny_config(data={"source": None, "root": str(tmp_path), "birads_positive": "4,high"}))
    with pytest.raises(SettingError, match="split must be one of"):
        load_config(tiny_config(cv={"split": "random"}))
    config = load_config(tiny_config(data={"source": None, "root": str(tmp_path), "layout": "vindr", "birads_positive": "3,4,5"}))
    assert config.data.layout_options() == {"birads_positive": "3,4,5"}
    assert load_config(config.to_dict()).data.birads_positive == "3,4,5"  # kept in the run's config.toml
    seen = {}

    def scan(root, **kwargs):
        seen.update(kwargs)
        raise SettingError("stop here")

    import arfl_studio.data as data_layer
    from arfl_studio.experiments.sources import open_source

    monkeypatch.setattr(data_layer, "scan_dataset", scan)
    with pytest.raises(SettingError, match="stop here"):
        open_source(config)
    assert seen["layout_options"] == {"birads_positive": "3,4,5"}
