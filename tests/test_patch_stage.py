"""The patch stage and the patch classifier: lesion patches are learnt on a phantom, the model
keeps the app's contract (one logit, a feature layer, every method's loss), and the bundled
real-data recipe validates and runs a tiny epoch on real films (skipped without ../shared/realdata)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from arfl_studio.experiments import load_config, run_experiment
from arfl_studio.models.patch_net import patch_mode
from arfl_studio.models.registry import ModelSpec, build_model
from arfl_studio.training.methods import SettingError, paper_method
from arfl_studio.training.patch_stage import PatchSampler, PatchSource, PatchStageSettings, train_patch_stage
from realdata import mias_dev


def phantom_sources(rng: np.random.Generator, n: int = 8) -> list[PatchSource]:
    """Breasts of noisy tissue; half the images hold a bright malignant blob, some a dim benign one."""
    rows, cols = np.ogrid[:96, :80]
    sources = []
    for i in range(n):
        image = np.zeros((1, 96, 80), np.float32)
        breast = ((rows - 48) / 44.0) ** 2 + (cols / 70.0) ** 2 < 1
        image[0][breast] = 0.35 + 0.08 * rng.standard_normal(int(breast.sum()))
        malignant, benign = [], []
        if i % 2 == 0:
            r, c = int(rng.integers(25, 70)), int(rng.integers(10, 40))
            image[0][(rows - r) ** 2 + (cols - c) ** 2 < 25] = 0.95
            malignant.append((float(r), float(c), 5.0))
        elif i % 4 == 1:
            r, c = int(rng.integers(25, 70)), int(rng.integers(10, 40))
            image[0][(rows - r) ** 2 + (cols - c) ** 2 < 25] = 0.6
            benign.append((float(r), float(c), 5.0))
        sources.append(PatchSource(np.clip(image, 0, 1), int(bool(malignant)), malignant, benign))
    return sources


def test_sampler_centres_positives_on_lesions_and_keeps_negatives_away():
    rng = np.random.default_rng(0)
    sources = phantom_sources(rng)
    x, y = PatchSampler(sources, PatchStageSettings(patch=24, per_epoch=40), rng).epoch()
    assert x.shape == (80, 1, 24, 24) and y.sum() == 40
    centre = x[:, 0, 10:14, 10:14].mean(axis=(1, 2))
    tissue = np.array([np.median(p[p > 0]) for p in x[:, 0]])  # augmented in gamma/contrast, monotone
    assert (centre[y == 1] > tissue[y == 1] + 0.15).all()  # every positive patch has its lesion in the middle
    assert np.median(centre[y == 0] - tissue[y == 0]) < 0.05


def test_augmentation_changes_the_breast_and_keeps_the_background_zero():
    from arfl_studio.training.patch_stage import _augmented

    patch = np.zeros((1, 24, 24), np.float32)
    patch[0, :, :12] = np.linspace(0.2, 0.8, 12)  # breast on the left, blanked film on the right
    outs = [_augmented(patch, np.random.default_rng(k)) for k in range(20)]
    for out in outs:  # a quarter turn and flip move the breast, never turn background into tissue
        assert (out > 0).sum() == (patch > 0).sum() and out.min() >= 0 and out.max() <= 1
    breast_means = {round(float(out[out > 0].mean()), 3) for out in outs}
    assert len(breast_means) > 10  # intensity changes from one draw to the next


def test_hard_negatives_accumulate_in_a_bounded_pool():
    from arfl_studio.training import patch_stage

    sources = phantom_sources(np.random.default_rng(3))
    sampler = PatchSampler(sources, PatchStageSettings(patch=24, per_epoch=16), np.random.default_rng(0))
    model = build_model(ModelSpec(backbone="patch_fcn", in_channels=1, width=8))
    sampler.mine(model, torch.device("cpu"), per_image=2, images=4)
    first = list(sampler.hard)
    sampler.mine(model, torch.device("cpu"), per_image=2, images=4)
    assert len(first) == 8 and sampler.hard[:8] == first and len(sampler.hard) == 16  # kept, not replaced
    for source, row, col in sampler.hard:  # never on a malignant lesion
        assert all((row - r) ** 2 + (col - c) ** 2 > rad**2 for r, c, rad in source.malignant)
    for _ in range(patch_stage.HARD_POOL // 8):
        sampler.mine(model, torch.device("cpu"), per_image=2, images=4)
    assert len(sampler.hard) == patch_stage.HARD_POOL


def test_patch_stage_learns_lesion_patches_with_any_method():
    rng = np.random.default_rng(1)
    sources = phantom_sources(rng)
    for key in ("A", "F"):  # standard training, and dual adversarial training + ARFL on the feature layer
        torch.manual_seed(0)
        model = build_model(ModelSpec(backbone="patch_fcn", in_channels=1, width=8))
        settings = PatchStageSettings(epochs=6, patch=24, per_epoch=64, batch_size=32, lr=5e-3, hard_every=2)
        history = train_patch_stage(model, sources, paper_method(key), settings, torch.device("cpu"), seed=0)
        assert len(history["loss"]) == 6
        model.eval()
        x, y = PatchSampler(sources, settings, np.random.default_rng(5)).epoch()
        with torch.no_grad(), patch_mode(model):
            logits = model(torch.from_numpy(x)).numpy()
        assert logits[y == 1].mean() > logits[y == 0].mean() + 1.0, key


def test_image_logit_is_the_top_patches_on_the_breast():
    model = build_model(ModelSpec(backbone="patch_fcn", in_channels=1, width=8, top_k=3)).eval()
    x = torch.zeros(2, 1, 96, 80)
    x[:, :, 8:88, :48] = 0.4
    with torch.no_grad():
        z, features = model(x, return_features=True)
        logits, _ = model.logit_map(x)
        valid = model.breast_cells(x, tuple(logits.shape[-2:]))
        expected = logits[0][valid[0]].topk(3).values.mean()
    assert z.shape == (2,) and features.shape[1] == 4 * 8
    assert z[0] == pytest.approx(float(expected), abs=1e-5)


def test_patch_stage_needs_the_patch_backbone():
    config = load_config("resources/configs/real_cpu.toml").to_dict()
    config["model"]["backbone"] = "small_cnn"
    with pytest.raises(SettingError, match="backbone = \"patch_fcn\""):
        load_config(config)


def _tiny_mias(tmp_path, patients: int = 10):
    """The first films of mias-dev with malignant lesions and their partners, as a small CSV folder."""
    root = mias_dev()
    rows = list(csv.DictReader(open(root / "labels.csv")))
    lesions = list(csv.DictReader(open(root / "lesions.csv")))
    marked = {r["path"] for r in lesions if r["x"] and r["pathology"] == "malignant"}
    wanted = sorted({r["patient"] for r in rows if r["path"] in marked})[: patients // 2]
    wanted += sorted({r["patient"] for r in rows if r["label"] == "normal"})[: patients - len(wanted)]
    keep = [r for r in rows if r["patient"] in wanted]
    (tmp_path / "images").mkdir(parents=True)
    for r in keep:
        shutil.copy(root / r["path"], tmp_path / r["path"])
    for name, table in (("labels.csv", keep), ("lesions.csv", [r for r in lesions if r["path"] in {k["path"] for k in keep}])):
        with open(tmp_path / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(table[0]))
            writer.writeheader()
            writer.writerows(table)
    return tmp_path


def test_real_cpu_recipe_runs_a_tiny_epoch_on_real_films(tmp_path):
    data = _tiny_mias(tmp_path / "mias")
    config = load_config("resources/configs/real_cpu.toml").to_dict()
    config["data"] = {"root": str(data), "layout": "csv", "cache_dir": str(tmp_path / "cache")}
    config["preprocess"]["size"] = [96, 72]
    config["model"]["width"] = 8
    config["patch_stage"].update(epochs=1, patch=24, per_epoch=16, batch_size=16)
    config["training"].update(epochs=1, batch_size=4, device="cpu")
    config["cv"]["folds"] = 2
    config["evaluation"]["steps"] = 2
    out = tmp_path / "run"
    assert run_experiment(config, out).status == "finished"
    for key in ("A", "F"):
        manifest = json.loads((out / key / "fold_0" / "manifest.json").read_text())
        assert manifest["patch_stage"]["epochs"] == 1 and len(manifest["patch_stage"]["loss"]) == 1
        assert 0.0 <= manifest["results"]["standard_auc"] <= 1.0
        assert manifest["epochs_completed"] == 1 and "selected_epoch" not in manifest  # the last epoch, as configured
        recorded = json.loads((out / key / "fold_0" / "model.json").read_text())["preprocess"]
        assert recorded["crop"] == "breast-only" and recorded["intensity"] == "breast-percentile"


@pytest.mark.parametrize("key", list("ABCDEFGHI"))
def test_every_paper_method_trains_the_patch_classifier(key):
    config = load_config("resources/configs/real_cpu.toml")
    method = paper_method(key)
    spec = config.model_spec_for(method)  # DSBN gets its dual batch norms here
    model = build_model(ModelSpec(**{**spec.to_dict(), "width": 8}))
    settings = PatchStageSettings(epochs=1, patch=24, per_epoch=16, batch_size=16)
    history = train_patch_stage(model, phantom_sources(np.random.default_rng(2)), method, settings, torch.device("cpu"), seed=0)
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 64, 48)).shape == (2,)


def test_the_patch_stage_alone_is_a_run_and_nothing_else_trains_no_epoch():
    config = load_config("resources/configs/real_cpu.toml").to_dict()
    config["training"]["epochs"] = 0  # the patch stage alone
    assert load_config(config).training.epochs == 0
    config["patch_stage"]["epochs"] = 0
    with pytest.raises(SettingError, match="epochs = 0 is allowed only with a \\[patch_stage\\]"):
        load_config(config)


def test_patch_stage_keeps_its_best_validated_epoch_from_the_last_two_thirds():
    sources = phantom_sources(np.random.default_rng(4))
    model = build_model(ModelSpec(backbone="patch_fcn", in_channels=1, width=8))
    aucs = iter([0.6, 0.9, 0.7, 0.9])  # epochs 3..6 of 6 (the first third, epochs 1-2, are not candidates)
    history = train_patch_stage(
        model,
        sources,
        paper_method("A"),
        PatchStageSettings(epochs=6, patch=24, per_epoch=16),
        torch.device("cpu"),
        seed=0,
        validate=lambda m: next(aucs),
    )
    assert history["validation_auc"] == [0.6, 0.9, 0.7, 0.9] and history["selected_epoch"] == 6  # ties: the later
