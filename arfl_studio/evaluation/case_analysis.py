"""What the viewer shows for one case, computed in a worker (Qt-free).

Both coordinate spaces (DESIGN.md): the native image as acquired (pixels, pixel
spacing, laterality/view, header windows) with the preprocessing ``Geometry`` that
maps model space onto it, and, for each model, the model input, P(malignant) clean
and adversarial, δ, the adversarial input and saliency maps — all in model space,
mapped to native space by the viewer. Everything is returned as numpy copies.

δ of the model the Attack pane attacked is the attack's own (kept with the flipped
case) when the case carries it, so the viewer's numbers are the table's; otherwise
the attack is run again with the case's settings and a fixed seed, and says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch


def dicom_tags(path: str | Path) -> list[dict]:
    """Header elements as rows (no pixel data), each flagged ``phi`` (PS3.15 basic profile, ``data.deid``)."""
    import pydicom

    from arfl_studio.data.dicom.deid import is_phi

    ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    rows = []
    for elem in ds.iterall():
        if elem.VR == "SQ":
            continue
        value = elem.value
        text = str(value) if not isinstance(value, (bytes, bytearray)) else f"<{len(value)} bytes>"
        rows.append(
            {
                "tag": f"({elem.tag.group:04X},{elem.tag.element:04X})",
                "keyword": elem.keyword or "",
                "value": text[:120],
                "phi": is_phi(elem.tag, elem.VR),
            }
        )
    return rows


def header_windows(path: str | Path, scale) -> dict[str, tuple[float, float]]:
    """The header's window presets as display levels (``data.dicom.windows.window_presets``)."""
    import pydicom

    from arfl_studio.data.dicom.windows import window_presets

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception:  # the pixels were read: the header's extras are not worth a failure
        return {"Header window": (0.0, 1.0)}
    return window_presets(ds, scale)


def native_image(path: str | Path, settings) -> dict:
    """The DICOM as acquired (pixels and their display pyramid), and the geometry that maps
    model space onto it."""
    from arfl_studio.data.dicom.decode_pool import read_mammogram_isolated
    from arfl_studio.data.preprocess.transform import compute_geometry

    from arfl_studio.data.preprocess.pyramid import Pyramid

    # a JPEG 2000 decode must not hold the UI thread's GIL; unclipped: a window wider than the
    # header's first one shows what lies outside it
    mammogram = read_mammogram_isolated(path, clip=False)
    pyramid = Pyramid(mammogram.pixels)  # display levels built here, off the UI thread
    low, high = pyramid.value_range()
    # the model's pixels, exactly (clipping afterwards is what the reader's clip does)
    pixels = np.clip(mammogram.pixels, 0.0, 1.0) if low < 0 or high > 1 else mammogram.pixels
    geometry = compute_geometry(pixels, settings, spacing=mammogram.pixel_spacing)
    return {
        "path": str(path),  # the source of a DICOM export
        "pixels": pixels,
        "pyramid": pyramid,
        "scale": mammogram.display_scale,  # display value <-> modality value (None: no straight line)
        "spacing": mammogram.pixel_spacing,
        "laterality": mammogram.laterality,
        "view": mammogram.view,
        "geometry": geometry.to_dict(),
        "fit": getattr(settings, "fit", "stretch"),
        "crop": getattr(settings, "crop", "breast"),
        "presets": header_windows(path, mammogram.display_scale),
    }


def _gray(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().mean(dim=0).cpu().numpy().copy()


def _prob(model, x: torch.Tensor) -> float:
    from arfl_studio.training.attacks import attack_mode

    with attack_mode(model), torch.no_grad():
        z = float(model(x[None]).float().reshape(-1)[0])
    return 1.0 / (1.0 + math.exp(-max(min(z, 80), -80)))


def _attack_delta(model, image: torch.Tensor, target: float, attack: str, eps: float, settings: dict) -> np.ndarray:
    """δ (C, H, W) of ``attack``, seeded so that asking twice gives the same answer."""
    from arfl_studio.evaluation.attacks import run_attack

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = image.detach().float().to(device)[None]
    generator = torch.Generator(device="cpu").manual_seed(int(settings.get("seed", 0)))
    kwargs = {k: settings[k] for k in ("steps", "restarts", "step_size", "queries") if settings.get(k) is not None}
    adv = run_attack(model, x, torch.tensor([float(target)], device=device), attack, eps, generator=generator, **kwargs)
    return (adv - x)[0].detach().cpu().numpy().astype(np.float32)


CLASS_NAMES = {0: "benign", 1: "malignant"}


def analyse_case(
    models: dict,
    image: torch.Tensor,
    target: float,
    attack: str = "pgd",
    eps: float = 0.01,
    saliency: str = "gradient",
    deltas: dict | None = None,
    attack_settings: dict | None = None,
    thresholds: dict | None = None,
) -> dict:
    """``models``: {name: model}. ``image``: (C, H, W) in [0, 1]. ``thresholds``: {name: the
    model's stored decision threshold (a logit)}: each saliency map explains the class the
    model predicts at it (logit 0 where absent); ``explains`` names that class.

    ``deltas``: {name: δ in model space, (H, W) or (C, H, W)} kept by the attack that
    listed the case; a model without one is attacked here (``attack_settings``: steps,
    restarts, step_size, seed)."""
    from arfl_studio.evaluation import saliency_map
    from arfl_studio.evaluation.saliency import explained_class

    from arfl_studio.training.attacks import project

    deltas, settings = deltas or {}, attack_settings or {}
    clamp = tuple(settings["clamp"]) if settings.get("clamp") else None if "clamp" in settings else (0.0, 1.0)
    x = image.detach().float()
    out: dict[str, Any] = {"image": _gray(image), "target": float(target), "attack": attack, "eps": float(eps), "models": {}}
    for name, model in models.items():
        threshold = float((thresholds or {}).get(name, 0.0))
        kept = deltas.get(name)
        if kept is not None:
            delta = np.asarray(kept, dtype=np.float32)
            delta = np.broadcast_to(delta, image.shape) if delta.ndim == 2 else delta
            source = "the attack's own δ (numbers as in the attack table)"
        else:
            delta = _attack_delta(model, image, target, attack, eps, settings)
            source = "δ computed here (seeded; the attack table's batch run may differ)"
        # rebuilt exactly as the evaluation scored it: projected onto the ε-ball, clamped
        adv_t = project(x + torch.as_tensor(np.ascontiguousarray(delta)), x, float(eps), clamp).to(image.dtype)
        out["models"][name] = {
            "clean_prob": _prob(model, image),
            "adversarial_prob": _prob(model, adv_t),
            "delta": (adv_t.float() - x).mean(dim=0).numpy().astype(np.float32),
            "delta_source": source,
            "adversarial": _gray(adv_t),
            "saliency_clean": np.asarray(saliency_map(model, image, method=saliency, threshold=threshold), dtype=np.float32).copy(),
            "saliency_adversarial": np.asarray(saliency_map(model, adv_t, method=saliency, threshold=threshold), dtype=np.float32).copy(),
            "explains": {
                "clean": CLASS_NAMES[explained_class(model, image, None, threshold)],
                "adversarial": CLASS_NAMES[explained_class(model, adv_t, None, threshold)],
                "threshold_logit": threshold,
            },
        }
    return out


def four_views(
    records,
    patient_id: str,
    settings=None,
    models: dict | None = None,
    attack: str = "pgd",
    eps: float = 0.01,
    saliency: str = "gradient",
    attack_settings: dict | None = None,
    model_input=None,
    cancel=None,
) -> dict[str, dict]:
    """The patient's views as native images (``native_image``), named by ``hanging.view_names`` (the
    four-view hanging's names and every other view's); with ``models`` ({name: model})
    each also gets ``model_input`` and the models' maps (``analyse_case``), mapped to native
    space by ``add_native_maps``. ``model_input(record)`` returns the (C, H, W) input tensor
    (the run's preprocessing and cache). A view that cannot be read is ``{"error": reason,
    "record": record}``: the viewer shows its reason in place and the other views."""
    from arfl_studio.data import PreprocessSettings
    from arfl_studio.evaluation.hanging import view_names

    settings = settings or PreprocessSettings()
    out = {}
    for name, record in view_names(records, patient_id).items():
        if cancel is not None and cancel.is_set():
            break
        try:
            view = native_image(record.path, settings)
        except (OSError, ValueError) as exc:  # one undecodable view: a placeholder, the others stay
            out[name] = {"error": str(exc) or type(exc).__name__, "record": record}
            continue
        if models and model_input is not None:
            x = model_input(record)
            result = analyse_case(models, x, float(record.label), attack, eps, saliency, attack_settings=attack_settings)
            view["model_input"], view["models"] = result["image"], result["models"]
            add_native_maps(view)
        view["record"] = record
        add_lesions(view, record)
        out[name] = view
    return out


MAP_KEYS = ("saliency_clean", "saliency_adversarial", "delta")


def display_step(shape: tuple[int, int], max_px: int = 1024) -> int:
    """Native pixels per display pixel of the overlays: a power of two, at most ``max_px`` per side."""
    step = 1
    while max(shape) / step > max_px:
        step *= 2
    return step


def add_native_maps(image: dict, max_px: int = 1024) -> dict:
    """For each model of ``image``: its maps on a display grid of the native image and the
    adversarial image in native space (native pixels + δ mapped back, inside the crop)."""
    from arfl_studio.data.preprocess.geometry import Geometry, model_to_native
    from arfl_studio.data.preprocess.pyramid import Pyramid
    from arfl_studio.data.preprocess.registration import model_to_native_grid

    geometry = Geometry.from_dict(image["geometry"])
    step = display_step(geometry.shape, max_px)
    image["step"] = step
    for m in image.get("models", {}).values():
        m["native"] = {k: model_to_native_grid(m[k], geometry, image["fit"], step) for k in MAP_KEYS}
        delta = model_to_native(m["delta"], geometry, image["fit"])
        m["adversarial_native"] = Pyramid(np.clip(image["pixels"] + delta, 0, 1).astype(np.float32))
    return image


def record_root(record) -> Path | None:
    """The folder a scanned record's lesion mask paths are relative to: its path less its ``rel_path``."""
    path, rel = str(getattr(record, "path", "")), str(getattr(record, "rel_path", "") or "")
    if rel and Path(path).as_posix().endswith("/" + rel):
        return Path(Path(path).as_posix()[: -len(rel) - 1])
    return None


def add_lesions(image: dict, record, root=None, tolerance_mm: float | None = None) -> dict:
    """The record's lesion marks on ``image`` (a ``native_image``, maps added or not):
    ``lesions`` = {"native": outlines on the DICOM grid, "model": on the model input} and,
    when it has models, ``localisation`` = ``localise_case``. No lesions: both empty."""
    from arfl_studio.data.datasets.lesions import lesion_outlines, lesions_in_model_space, model_space_mask
    from arfl_studio.data.preprocess.geometry import Geometry

    lesions = [les for les in getattr(record, "lesions", ()) or () if les.has_position]
    root = root if root is not None else record_root(record)
    image["lesions"] = {"native": lesion_outlines(lesions, image["pixels"].shape, root), "model": []}
    image["localisation"] = {}
    if not lesions or "model_input" not in image:
        return image
    geometry, size = Geometry.from_dict(image["geometry"]), image["model_input"].shape
    masks = []
    for les in lesions:
        try:
            masks.append(model_space_mask([les], geometry, size, image["fit"], root) if les.mask else None)
        except (OSError, ValueError):
            masks.append(np.zeros(size, dtype=bool))
    image["lesions"]["model"] = lesion_outlines(lesions_in_model_space(lesions, geometry, size, image["fit"]), size, masks=masks)
    image["localisation"] = localise_case(image, lesions, root, tolerance_mm)
    return image


def localise_case(image: dict, lesions, root=None, tolerance_mm: float | None = None) -> dict:
    """Where each model's saliency map of this case looks, clean and adversarial, on the native grid:
    {model: {"clean": Localisation dict, "adversarial": ...}} (``evaluation.localisation``: pointing
    game within ``tolerance_mm``, energy inside the lesions and off the breast, chance). The maps
    measured are the ones the viewer shows (the class predicted at the stored threshold)."""
    from arfl_studio.data.datasets.lesions import lesion_mask
    from arfl_studio.data.preprocess.crop import native_breast_mask
    from arfl_studio.data.preprocess.geometry import Geometry, model_to_native
    from arfl_studio.evaluation.localisation import DEFAULT_TOLERANCE_MM, localise

    pixels = image["pixels"]
    try:
        lesion_pixels = lesion_mask(lesions, pixels.shape, root)
    except (OSError, ValueError):
        return {}
    if not lesion_pixels.any():
        return {}
    breast = native_breast_mask(pixels, image.get("crop", "breast"))
    geometry, fit = Geometry.from_dict(image["geometry"]), image["fit"]
    tolerance = DEFAULT_TOLERANCE_MM if tolerance_mm is None else tolerance_mm
    out = {}
    for name, m in (image.get("models") or {}).items():
        out[name] = {
            side: localise(
                model_to_native(m[f"saliency_{side}"], geometry, fit), lesion_pixels, breast, image.get("spacing"), tolerance
            ).to_dict()
            | {"tolerance_mm": tolerance}
            for side in ("clean", "adversarial")
        }
    return out
