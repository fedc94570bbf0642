"""The viewer's lesion layer and per-case localisation, computed in the core (no Qt)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from lesion_phantom import BrightSpotModel, write_phantom

from arfl_studio.data import PreprocessSettings
from arfl_studio.data.datasets.lesions import Lesion, lesion_outlines, mask_outlines
from arfl_studio.data.preprocess.transform import preprocess_pixels
from arfl_studio.evaluation import case_analysis

SETTINGS = PreprocessSettings(size=(32, 32), channels=1)


def analysed(tmp_path, laterality="R", lesions=()):
    path, lesion, _ = write_phantom(tmp_path / f"{laterality}CC.dcm", laterality, "CC")
    image = case_analysis.native_image(path, SETTINGS)
    gray, _ = preprocess_pixels(image["pixels"], SETTINGS)
    result = case_analysis.analyse_case(
        {"M": BrightSpotModel().eval()}, torch.from_numpy(gray[None].copy()), 1.0, "pgd", 0.02, attack_settings={"steps": 1}
    )
    image.update(model_input=result["image"], models=result["models"])
    case_analysis.add_native_maps(image)
    record = SimpleNamespace(path=path, rel_path=path.name, lesions=tuple(lesions))
    return image, record, lesion


def test_case_localisation_scores_the_map_on_the_lesion_and_off_it(tmp_path):
    image, record, (r, c) = analysed(tmp_path)
    on = Lesion("mass", centre=(r, c), radius=8.0, pathology="malignant")
    case_analysis.add_lesions(image, SimpleNamespace(**{**vars(record), "lesions": (on,)}))
    clean = image["localisation"]["M"]["clean"]
    assert clean["pointing"] == 1.0
    assert clean["energy_inside"] > clean["chance"] > 0
    assert set(image["localisation"]["M"]) == {"clean", "adversarial"}
    far = Lesion("mass", centre=(40.0, 20.0), radius=5.0)  # a mark far from the bright spot
    case_analysis.add_lesions(image, SimpleNamespace(**{**vars(record), "lesions": (far,)}))
    assert image["localisation"]["M"]["clean"]["pointing"] == 0.0


def test_lesion_layers_native_and_model_space(tmp_path):
    image, record, (r, c) = analysed(tmp_path, laterality="R")  # R: the model input is flipped
    case_analysis.add_lesions(
        image,
        SimpleNamespace(
            **{
                **vars(record),
                "lesions": (Lesion("mass", centre=(r, c), radius=10.0, pathology="benign"), Lesion("calcification", centre=(5.0, 6.0))),
            }
        ),
    )
    native, model = image["lesions"]["native"], image["lesions"]["model"]
    assert [s["kind"] for s in native] == ["outline", "point"]
    ring = np.array(native[0]["points"])
    assert np.allclose(ring.mean(axis=0), (r, c), atol=1) and native[0]["pathology"] == "benign"
    # in model space the outline's centre sits on the model input's bright spot
    centre = np.array(model[0]["points"]).mean(axis=0)
    peak = np.unravel_index(int(np.argmax(image["model_input"])), image["model_input"].shape)
    assert np.allclose(centre, peak, atol=2.0)


def test_no_lesions_no_layer_and_no_localisation(tmp_path):
    image, record, _ = analysed(tmp_path)
    case_analysis.add_lesions(image, record)
    assert image["lesions"] == {"native": [], "model": []} and image["localisation"] == {}


def test_mask_outline_traces_the_mask_and_box_is_four_corners():
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:10, 8:20] = True
    (line,) = mask_outlines(mask)
    assert line[:, 0].min() >= 4 and line[:, 0].max() <= 10 and line[:, 1].min() >= 7 and line[:, 1].max() <= 20
    (box,) = lesion_outlines([Lesion("mass", box=(1, 4, 2, 9))], (20, 30))
    assert sorted(box["points"]) == sorted([(1, 2), (1, 9), (4, 9), (4, 2)])


def test_record_root_is_the_path_less_its_relative_path(tmp_path):
    record = SimpleNamespace(path=tmp_path / "a" / "b.dcm", rel_path="a/b.dcm")
    assert case_analysis.record_root(record) == tmp_path
