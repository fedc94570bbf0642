"""The unit an AUC is computed over: each image (the paper), each breast, or each patient.

A screening decision is made per breast or per woman, not per view, and several views of
one breast are not independent samples. ``aggregate`` turns per-image logits into
per-unit scores:

- ``"image"``: every image is its own unit (the paper's AUC);
- ``"breast"``: the views of one patient's breast (same patient and laterality) score
  the mean of their logits; the breast is malignant if any of its images is;
- ``"patient"``: the maximum over the patient's breasts of the breast score; the
  patient is malignant if any breast is.

An image without laterality cannot be matched to its breast's other views: it stays a
breast of its own (and still counts towards its patient). Qt-free, numpy only.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

UNITS = ("image", "breast", "patient")
UNIT_WORDS = {
    "image": "per image",
    "breast": "per breast (mean logit of its views)",
    "patient": "per patient (max over breasts of the breast's mean logit)",
}


def check_unit(unit: str) -> str:
    if unit not in UNITS:
        raise ValueError(f"evaluation unit must be one of {UNITS}, got {unit!r}")
    return unit


def _breast_id(record, index: int) -> str:
    side = getattr(record, "laterality", None)
    if side in (None, ""):  # no laterality: a breast of its own (cannot be grouped with other views)
        return f"{record.patient_id}|?{index}"
    return f"{record.patient_id}|{side}"


def aggregate(records: Sequence, logits, labels, unit: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(unit ids, unit logits, unit labels 0/1) for per-image ``logits`` and ``labels`` of ``records``.

    ``records`` carry ``patient_id`` and ``laterality`` and are in the order of ``logits``
    and ``labels``. Units come in the order of their first image; ids are "PATIENT" or
    "PATIENT|SIDE" (images keep their position: "#K").
    """
    unit = check_unit(unit)
    logits = np.asarray(logits, dtype=float).reshape(-1)
    labels = (np.asarray(labels, dtype=float).reshape(-1) > 0.5).astype(int)
    if not len(records) == len(logits) == len(labels):
        raise ValueError(f"{len(records)} records, {len(logits)} logits and {len(labels)} labels")
    if unit == "image":
        return [f"#{i}" for i in range(len(records))], logits.copy(), labels.copy()
    breasts: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        breasts.setdefault(_breast_id(record, i), []).append(i)
    ids = list(breasts)
    b_logits = np.array([logits[idx].mean() for idx in breasts.values()], dtype=float)
    b_labels = np.array([labels[idx].max() for idx in breasts.values()], dtype=int)
    if unit == "breast":
        return ids, b_logits, b_labels
    patients: dict[str, list[int]] = {}
    for j, i in enumerate(idx[0] for idx in breasts.values()):
        patients.setdefault(str(records[i].patient_id), []).append(j)
    return (
        list(patients),
        np.array([b_logits[js].max() for js in patients.values()], dtype=float),
        np.array([b_labels[js].max() for js in patients.values()], dtype=int),
    )
