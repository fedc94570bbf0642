import json

import numpy as np
import pytest
import torch

from arfl_studio.cli import main
from arfl_studio.evaluation.saliency import (
    METHODS,
    attribution,
    blend_overlay,
    compare_figure,
    delta_display,
    perturbation,
    perturbation_overlay,
    saliency_map,
)
from arfl_studio.evaluation.synthetic import blob_images, train_tiny_cnn
from arfl_studio.models.registry import ModelSpec, build_model, save_checkpoint


@pytest.fixture(scope="module")
def model():
    x, y = blob_images(64, size=24, seed=1)
    return train_tiny_cnn(x, y, epochs=4, width=4), x[:2], y[:2]


@pytest.mark.parametrize("method", METHODS)
def test_maps_in_unit_range(model, method):
    m, x, y = model
    s = saliency_map(m, x[0], method, target=int(y[0]), samples=4, ig_steps=8)
    assert s.shape == (24, 24) and s.dtype == np.float32
    assert s.min() == 0.0 and s.max() == pytest.approx(1.0)
    assert not m.training


def test_gradient_map_is_loss_gradient(model):
    # the paper's map: |d BCE / dx| scaled to [0, 1]; equal to the scaled logit gradient
    m, x, y = model
    xi = x[0:1].clone().requires_grad_(True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(m(xi), y[0:1])
    (g,) = torch.autograd.grad(loss, xi)
    g = g[0].abs().amax(0).numpy()
    expected = (g - g.min()) / (g.max() - g.min())
    np.testing.assert_allclose(saliency_map(m, x[0], "gradient", target=int(y[0])), expected, atol=1e-5)


def test_integrated_gradients_completeness(model):
    # IG attributions sum to f(x) - f(baseline) for the signed logit
    m, x, y = model
    attr = attribution(m, x[0], "integrated-gradients", target=1, ig_steps=64)
    with torch.no_grad():
        diff = float(m(x[0:1]) - m(torch.zeros_like(x[0:1])))
    assert attr.sum() == pytest.approx(diff, rel=0.05, abs=0.05)


def test_perturbation_and_overlays(model):
    m, x, y = model
    delta, adv = perturbation(m, x[0], int(y[0]), "pgd", 0.02, steps=5)
    assert delta.shape == adv.shape == (24, 24)
    assert np.abs(delta).max() <= 0.02 + 1e-6
    shown, gain = delta_display(delta)
    assert shown.min() >= 0 and shown.max() <= 1 and gain == pytest.approx(0.5 / np.abs(delta).max())
    rgb, _ = perturbation_overlay(x[0].numpy(), delta)
    assert rgb.shape == (24, 24, 3) and rgb.dtype == np.uint8


def test_blend_overlay_by_hand():
    gray = np.full((2, 2), 0.5, np.float32)
    heat = np.array([[0.0, 1.0], [0.5, 0.25]], np.float32)
    out = blend_overlay(gray, heat, "gray", alpha=0.5)
    assert out[0, 0].tolist() == [64, 64, 64]  # 0.5*0.5 + 0.5*0
    assert out[0, 1].tolist() == [191, 191, 191]  # 0.5*0.5 + 0.5*1
    assert blend_overlay(gray, heat, alpha=0.0)[1, 1].tolist() == [128, 128, 128]
    with pytest.raises(ValueError):
        blend_overlay(gray, np.zeros((3, 3)))
    with pytest.raises(ValueError):
        blend_overlay(gray, heat, alpha=2)


def test_compare_figure(tmp_path, model):
    m, x, y = model
    panels = [(name, blend_overlay(x[0].numpy(), saliency_map(m, x[0]))) for name in ("with ARFL", "without")]
    compare_figure(panels, tmp_path / "cmp.png")
    from matplotlib import image as mpimg

    img = mpimg.imread(tmp_path / "cmp.png")
    assert img.shape[1] > img.shape[0] > 100  # two panels side by side plus a colour bar


def test_saliency_cli_on_demo_dicom(tmp_path):
    from arfl_studio.data import generate_demo_dataset, scan_dataset

    root = generate_demo_dataset(tmp_path / "demo", patients=2, size=(128, 104), seed=0)
    dcm = str(scan_dataset(root).images[0].path)
    ckpts = []
    for i, epochs in enumerate((3, 0)):
        spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
        model = build_model(spec)
        if epochs:
            x, y = blob_images(32, size=32, channels=1, seed=i)
            model.load_state_dict(train_tiny_cnn(x, y, epochs=epochs, width=4).state_dict())
        ckpts.append(str(save_checkpoint(tmp_path / f"m{i}.pt", model, spec)))
    out, raw, js = tmp_path / "s.png", tmp_path / "s.npy", tmp_path / "s.json"
    assert (
        main(["saliency", ckpts[0], dcm, "--size", "32", "--space", "model", "--out", str(out), "--raw", str(raw), "--json", str(js)]) == 0
    )
    from matplotlib import image as mpimg

    assert mpimg.imread(out).shape[:2] == (32, 32)
    saved = np.load(raw)
    assert saved.shape == (32, 32) and saved.min() >= 0 and saved.max() <= 1
    doc = json.loads(js.read_text())
    assert doc["method"] == "gradient" and 0 <= doc["models"][0]["probability"] <= 1 and doc["space"] == "model"
    cmp = tmp_path / "cmp.png"
    assert (
        main(
            [
                "saliency",
                ckpts[0],
                dcm,
                "--size",
                "32",
                "--method",
                "smoothgrad",
                "--samples",
                "4",
                "--compare",
                ckpts[1],
                "--out",
                str(cmp),
                "--raw",
                str(raw),
                "--space",
                "model",
                "--force",
            ]
        )
        == 0
    )
    assert np.load(raw).shape == (2, 32, 32) and mpimg.imread(cmp).shape[1] > 200
    # default: the DICOM's own grid, both panels at full size
    assert (
        main(["saliency", ckpts[0], dcm, "--size", "32", "--compare", ckpts[1], "--out", str(cmp), "--raw", str(raw), "--force"]) == 0
    )  # replacing our own earlier outputs
    assert np.load(raw).shape == (2, 128, 104) and mpimg.imread(cmp).shape[1] > 2 * 104
    adv = tmp_path / "adv.png"
    assert (
        main(
            [
                "saliency",
                ckpts[0],
                dcm,
                "--size",
                "32",
                "--method",
                "perturbation",
                "--eps",
                "0.02",
                "--steps",
                "3",
                "--out",
                str(tmp_path / "p.png"),
                "--adv-out",
                str(adv),
            ]
        )
        == 0
    )
    assert adv.is_file()
    assert main(["saliency", str(tmp_path / "none.pt"), dcm, "--out", str(out), "--force"]) == 2


@pytest.fixture(scope="module")
def one_channel_checkpoint(tmp_path_factory):
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    model = build_model(spec)
    x, y = blob_images(32, size=32, channels=1, seed=3)
    model.load_state_dict(train_tiny_cnn(x, y, epochs=2, width=4).state_dict())
    return str(save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", model, spec))


@pytest.mark.parametrize("laterality,method", [("L", "gradient"), ("R", "gradient"), ("R", "perturbation")])
def test_saliency_native_raw_lies_on_the_breast(tmp_path, one_channel_checkpoint, laterality, method):
    from lesion_phantom import write_phantom
    from matplotlib import image as mpimg

    dcm, _lesion, breast = write_phantom(tmp_path / "p.dcm", laterality, "CC")
    raw, out = tmp_path / "raw.npy", tmp_path / "overlay.png"
    args = [
        "saliency",
        one_channel_checkpoint,
        str(dcm),
        "--size",
        "32",
        "--method",
        method,
        "--eps",
        "0.02",
        "--steps",
        "2",
        "--out",
        str(out),
        "--raw",
        str(raw),
    ]
    assert main(args) == 0
    saved = np.abs(np.load(raw))
    assert saved.shape == breast.shape == mpimg.imread(out).shape[:2]  # the DICOM's size and orientation
    on_breast = saved[breast].sum() / saved.sum()
    assert on_breast > 0.6, on_breast
    assert saved[breast].mean() > 3 * saved[~breast].mean()
    assert saved[-30:-12, -40:-10].max() == 0 if laterality == "L" else saved[-30:-12, 10:40].max() == 0  # the label


def test_the_stored_threshold_decides_the_class_a_map_explains(tmp_path, one_channel_checkpoint):
    """Issue 27: not logit 0 — the decision threshold stored with the model; caption and JSON say which class."""
    from arfl_studio.evaluation.saliency import explained_class
    from arfl_studio.models.registry import DecisionThreshold, load_checkpoint

    model, spec = load_checkpoint(one_channel_checkpoint)
    image = np.clip(np.random.default_rng(0).random((32, 32)).astype(np.float32) * 0.5 + 0.2, 0, 1)
    np.save(tmp_path / "img.npy", image)
    with torch.no_grad():
        z = float(model(torch.from_numpy(image)[None, None]).reshape(-1)[0])
    explained, deltas = {}, {}
    for name, logit in (("low", z - 1.0), ("high", z + 1.0)):
        path = save_checkpoint(tmp_path / f"{name}.pt", model, spec, DecisionThreshold(logit=logit, rule="logit"))
        js = tmp_path / f"{name}-saliency.json"  # {name}.json is the model's own description
        assert (
            main(
                [
                    "saliency",
                    str(path),
                    str(tmp_path / "img.npy"),
                    "--size",
                    "32",
                    "--space",
                    "model",
                    "--method",
                    "perturbation",
                    "--eps",
                    "0.02",
                    "--steps",
                    "3",
                    "--out",
                    str(tmp_path / f"{name}.png"),
                    "--raw",
                    str(tmp_path / f"{name}.npy"),
                    "--json",
                    str(js),
                ]
            )
            == 0
        )
        info = json.loads(js.read_text())["models"][0]
        explained[name] = info["explains"]
        assert "stored threshold" in info["explains_why"] and info["threshold"]["logit"] == pytest.approx(logit)
        deltas[name] = np.load(tmp_path / f"{name}.npy")
        assert explained_class(model, torch.from_numpy(image)[None], None, logit) == (explained[name] == "malignant")
    assert explained == {"low": "malignant", "high": "benign"}  # the same logit, two thresholds, two classes
    assert np.sum(deltas["low"] * deltas["high"]) < 0  # the attack pushes away from the explained class
