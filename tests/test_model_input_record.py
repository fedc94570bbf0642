"""Issue 26 item 6: a model records the whole input it was trained on (model.json
"preprocess"), evaluation uses it, and a request for another input is refused naming both;
item 9: saliency's output suffix chooses its format."""

from __future__ import annotations

import json

import pytest

from arfl_studio.cli import main
from arfl_studio.data import PreprocessSettings
from arfl_studio.experiments import load_config, run_access, run_experiment
from arfl_studio.models.registry import ModelSpec, build_model, load_model_input, save_checkpoint

TRAINED = PreprocessSettings(size=(32, 32), channels=1, crop="otsu")


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    from arfl_studio.data import generate_demo_dataset, scan_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=4, size=(96, 80), seed=0)
    image = scan_dataset(root).images[0].path
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", build_model(spec), spec, preprocess=TRAINED.model_input_record())
    return root, image, ckpt


def test_checkpoint_records_the_whole_preprocessing(demo_checkpoint):
    _root, _image, ckpt = demo_checkpoint
    stored = load_model_input(ckpt)
    for key in ("orient", "crop", "size", "channels", "fit", "intensity", "pixel_values", "version"):
        assert key in stored
    assert stored["size"] == [32, 32] and stored["crop"] == "otsu"


def test_attack_uses_the_recorded_input_and_refuses_another(demo_checkpoint, tmp_path, capsys):
    root, _image, ckpt = demo_checkpoint
    out = tmp_path / "a.json"
    common = ["attack", str(ckpt), "--data", str(root), "--attack", "fgsm", "--no-probes", "--large-eps", "0"]
    assert main(common + ["--json", str(out)]) == 0
    assert json.loads(out.read_text())["preprocess"]["size"] == [32, 32]
    assert json.loads(out.read_text())["preprocess"]["crop"] == "otsu"
    capsys.readouterr()
    assert main(common + ["--size", "48", "--crop", "otsu"]) == 2
    err = capsys.readouterr().err
    assert "48x48" in err and "32x32" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(common + ["--crop", "breast"]) == 2
    err = capsys.readouterr().err
    assert "crop breast" in err and "otsu" in err


def test_saliency_refuses_another_size(demo_checkpoint, tmp_path, capsys):
    _root, image, ckpt = demo_checkpoint
    out = tmp_path / "s.png"
    assert main(["saliency", str(ckpt), str(image), "--out", str(out), "--size", "64"]) == 2
    err = capsys.readouterr().err
    assert "64x64" in err and "32x32" in err
    assert not out.exists()
    assert main(["saliency", str(ckpt), str(image), "--out", str(out), "--space", "model"]) == 0
    from matplotlib import image as mpimg

    assert mpimg.imread(out).shape[:2] == (32, 32)


def test_bare_checkpoint_without_record_still_takes_the_flags(tmp_path):
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    ckpt = save_checkpoint(tmp_path / "old.pt", build_model(spec), spec)
    assert load_model_input(ckpt) is None
    settings = run_access.model_preprocess(ckpt, 1, {"size": (40, 40)})
    assert settings.size == (40, 40) and settings.channels == 1


def test_run_fold_models_record_their_input_and_attack_refuses_another(tmp_path, capsys):
    config = load_config(
        {
            "name": "tiny",
            "data": {"source": "synthetic", "synthetic_samples": 16, "synthetic_size": [16, 16]},
            "preprocess": {"size": [16, 16], "channels": 1},
            "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
            "training": {"epochs": 1, "batch_size": 8, "device": "cpu"},
            "cv": {"folds": 2},
            "methods": [{"key": "A"}],
        }
    )
    run_experiment(config, tmp_path / "run")
    stored = load_model_input(run_access.fold_checkpoint(tmp_path / "run", "A", 0))
    assert stored["size"] == [16, 16] and stored["channels"] == 1
    capsys.readouterr()
    rc = main(["attack", str(tmp_path / "run"), "--attack", "fgsm", "--no-probes", "--size", "24"])
    err = capsys.readouterr().err
    assert rc == 2 and "24x24" in err and "16x16" in err


@pytest.mark.parametrize("name, magic", [("x.svg", b"<?xml"), ("x.pdf", b"%PDF"), ("x.png", b"\x89PNG")])
def test_saliency_suffix_chooses_the_format(demo_checkpoint, tmp_path, name, magic):
    """Issue 26 item 9: --out x.svg held PNG bytes."""
    _root, image, ckpt = demo_checkpoint
    out = tmp_path / name
    assert main(["saliency", str(ckpt), str(image), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


def test_saliency_refuses_an_unknown_suffix_before_any_work(demo_checkpoint, tmp_path, capsys):
    _root, image, ckpt = demo_checkpoint
    for args in (
        ["--out", str(tmp_path / "x.gif")],
        ["--out", str(tmp_path / "x")],
        ["--out", str(tmp_path / "ok.png"), "--raw", str(tmp_path / "map.csv")],
        ["--out", str(tmp_path / "ok.png"), "--method", "perturbation", "--adv-out", str(tmp_path / "a.bmp")],
    ):
        assert main(["saliency", str(ckpt), str(image), *args]) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and ("suffix" in err or ".npy" in err), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("description", ['{"threshold_logit": 0}', '{"model": 1}', "[]", "{not json"])
def test_a_model_description_without_its_model_table_is_named(demo_checkpoint, tmp_path, capsys, description):
    """Issue 26 item 4: a model.json without "model" ended in a KeyError traceback."""
    import shutil

    root, _image, ckpt = demo_checkpoint
    copy = tmp_path / "m.pt"
    shutil.copy(ckpt, copy)
    (tmp_path / "m.json").write_text(description)
    assert main(["attack", str(copy), "--data", str(root), "--no-probes"]) == 2
    err = capsys.readouterr().err
    assert "m.json" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
