"""What the viewer shows for one case, computed in a worker (Qt-free).

For each model: the model's input image, P(malignant) clean and adversarial, the
perturbation δ and the adversarial image, and saliency maps of both. Everything is
returned as numpy copies.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

PHI_KEYWORDS = ("PatientName", "PatientBirthDate", "PatientBirthTime", "PatientAddress", "PatientTelephoneNumbers",
                "OtherPatientNames", "OtherPatientIDs", "PatientMotherBirthName", "ReferringPhysicianName",
                "PerformingPhysicianName", "OperatorsName", "InstitutionName", "InstitutionAddress",
                "StationName", "AccessionNumber", "StudyID", "PhysiciansOfRecord", "RequestingPhysician",
                "PatientAge", "PatientSex", "PatientWeight", "PatientSize", "EthnicGroup", "DeviceSerialNumber")


def is_phi(keyword: str, vr: str) -> bool:
    return vr == "PN" or keyword in PHI_KEYWORDS or any(w in keyword for w in ("Birth", "Address", "Telephone"))


def dicom_tags(path: str | Path) -> list[dict]:
    """Header elements as rows (no pixel data), each flagged ``phi``."""
    import pydicom

    ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    rows = []
    for elem in ds.iterall():
        if elem.VR == "SQ":
            continue
        value = elem.value
        text = str(value) if not isinstance(value, (bytes, bytearray)) else f"<{len(value)} bytes>"
        rows.append({"tag": f"({elem.tag.group:04X},{elem.tag.element:04X})", "keyword": elem.keyword or "",
                     "value": text[:120], "phi": is_phi(elem.keyword or "", elem.VR)})
    return rows


def _gray(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().mean(dim=0).cpu().numpy().copy()


def _prob(model, x: torch.Tensor) -> float:
    from arfl_studio.training.attacks import attack_mode

    with attack_mode(model), torch.no_grad():
        z = float(model(x[None]).float().reshape(-1)[0])
    return 1.0 / (1.0 + math.exp(-max(min(z, 80), -80)))


def analyse_case(models: dict, image: torch.Tensor, target: float, attack: str = "pgd", eps: float = 0.01,
                 saliency: str = "gradient") -> dict:
    """``models``: {name: model}. ``image``: (C, H, W) in [0, 1]."""
    from arfl_studio.evaluation import perturbation, saliency_map

    out = {"image": _gray(image), "target": float(target), "models": {}}
    for name, model in models.items():
        delta, adversarial = perturbation(model, image, target, attack=attack, eps=eps)
        adv_t = torch.as_tensor(np.asarray(adversarial), dtype=image.dtype)
        if adv_t.dim() == 2:  # (H, W): same change on every channel
            adv_t = adv_t[None].expand_as(image).contiguous()
        out["models"][name] = {
            "clean_prob": _prob(model, image),
            "adversarial_prob": _prob(model, adv_t),
            "delta": np.asarray(delta, dtype=np.float32).copy(),
            "adversarial": _gray(adv_t),
            "saliency_clean": np.asarray(saliency_map(model, image, method=saliency), dtype=np.float32).copy(),
            "saliency_adversarial": np.asarray(saliency_map(model, adv_t, method=saliency), dtype=np.float32).copy(),
        }
    return out


def four_views(records, patient_id: str, max_px: int = 768) -> dict[str, np.ndarray]:
    """The patient's RCC, LCC, RMLO, LMLO as display pixels (downsampled)."""
    from arfl_studio.data import read_mammogram

    views = {}
    for r in records:
        if r.patient_id != patient_id or not r.laterality or not r.view:
            continue
        name = f"{r.laterality}{r.view}"
        if name in views:
            continue
        pixels = read_mammogram(r.path).pixels
        step = max(1, int(math.ceil(max(pixels.shape) / max_px)))
        views[name] = np.ascontiguousarray(pixels[::step, ::step], dtype=np.float32)
    return views
