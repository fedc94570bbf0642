"""Patient-level stratified k-fold splits (scikit-learn's StratifiedGroupKFold), and a dataset's
own train/test split.

All images of a patient are in the same fold, so no patient is seen in training
and testing of one fold. Stratified on the image label; seeded; saved as JSON
next to the run. :func:`official_split` is the one fold a dataset publishes (CBIS-DDSM's
``*_train_set.csv`` / ``*_test_set.csv``, VinDr-Mammo's ``split`` column): the test set is
kept as published, and a patient who is also in the training set is left out of training.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from arfl_studio.atomic import write_json


class PatientLeakError(AssertionError):
    """A patient appears in more than one fold."""


def patient_folds(records: Sequence[Any], k: int = 5, seed: int = 0) -> list[list[int]]:
    """Indices of the held-out records of each of ``k`` folds (every record held out once)."""
    from sklearn.model_selection import StratifiedGroupKFold

    n = len(records)
    groups = np.array([str(r.patient_id) for r in records])
    labels = np.array([int(r.label) for r in records])
    n_patients = len(set(groups.tolist()))
    if k < 2:
        raise ValueError(f"k must be at least 2, not {k}")
    if n_patients < k:
        raise ValueError(f"{k} folds need at least {k} patients; the records have {n_patients}")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = [sorted(int(i) for i in test) for _, test in splitter.split(np.zeros(n), labels, groups)]
    check_no_patient_leak(records, folds)
    return folds


# where each layout's official split comes from, in words (results tables name it)
OFFICIAL_SPLIT_SOURCES = {
    "cbis-ddsm": "CBIS-DDSM official split: trained on the *_train_set.csv images, tested on the *_test_set.csv images",
    "vindr": "VinDr-Mammo official split: breast-level_annotations.csv split 'training' trained on, 'test' tested on",
}
# a record's ``split`` as the datasets write it -> "train" | "test" (VinDr-Mammo: "training")
OFFICIAL_SPLIT_WORDS = {"train": "train", "training": "train", "test": "test"}


@dataclass(frozen=True)
class OfficialSplit:
    """The dataset's own train/test split as one fold.

    ``records`` are the records the run uses, ``test`` the indices (into ``records``) of the
    official test set. ``left_out`` are training records of the ``overlap`` patients, who are
    in both official sets: the test set stays as published (comparable with the literature)
    and those patients' training images are left out, so no patient is trained and tested on.
    """

    records: list[Any]
    test: list[int]
    overlap: list[str]
    left_out: list[Any]


def official_split(records: Sequence[Any]) -> OfficialSplit:
    """The records' own ``split`` ("train"/"training", "test") as one fold; ValueError when the
    dataset has none, a side is empty, or some records carry no split."""
    sides = [OFFICIAL_SPLIT_WORDS.get(str(getattr(r, "split", None) or "").strip().lower()) for r in records]
    if not any(sides):
        raise ValueError(
            "this dataset has no official train/test split (CBIS-DDSM's case-description CSVs and VinDr-Mammo's "
            "split column have one); use the patient-level cross-validation ([cv] split = \"patient-cv\")"
        )
    unknown = [str(getattr(r, "rel_path", r)) for r, side in zip(records, sides) if side is None]
    if unknown:
        raise ValueError(f"{len(unknown)} image(s) are in neither official set (e.g. {unknown[0]}); the official split cannot place them")
    for wanted in ("train", "test"):
        if wanted not in sides:
            raise ValueError(f"the official split has no {wanted} images among the labelled images")
    test_patients = {str(r.patient_id) for r, side in zip(records, sides) if side == "test"}
    overlap = sorted({str(r.patient_id) for r, side in zip(records, sides) if side == "train"} & test_patients)
    kept: list[Any] = []
    test: list[int] = []
    left_out: list[Any] = []
    for record, side in zip(records, sides):
        if side == "train" and str(record.patient_id) in test_patients:
            left_out.append(record)
            continue
        if side == "test":
            test.append(len(kept))
        kept.append(record)
    return OfficialSplit(kept, test, overlap, left_out)


def holdout_patients(records: Sequence[Any], fraction: float, seed: int = 0) -> list[int]:
    """Indices of about ``fraction`` of the records' patients, held out whole and stratified on the label.

    The inner split of a training fold: the model does not train on these patients, so
    scores on them behave like held-out scores (used to choose the decision threshold).
    Returns [] when ``fraction`` is 0 or the records cannot give each class a patient.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), not {fraction}")
    groups = np.array([str(r.patient_id) for r in records])
    labels = np.array([int(r.label) for r in records])
    k = max(2, round(1.0 / fraction)) if fraction > 0 else 0
    # every class needs at least k patients for each inner fold to see it
    if k == 0 or min((len(set(groups[labels == c].tolist())) for c in (0, 1)), default=0) < k:
        return []
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    _, held = next(splitter.split(np.zeros(len(records)), labels, groups))
    return sorted(int(i) for i in held)


def check_no_patient_leak(records: Sequence[Any], folds: Sequence[Sequence[int]]) -> None:
    """Raise PatientLeakError if a patient's images are in two folds, or a record is missing/doubled."""
    owner: dict[str, int] = {}
    seen: set[int] = set()
    for f, fold in enumerate(folds):
        for i in fold:
            if i in seen:
                raise PatientLeakError(f"record {i} is in more than one fold")
            seen.add(i)
            patient = str(records[i].patient_id)
            if owner.setdefault(patient, f) != f:
                raise PatientLeakError(f"patient {patient} is in folds {owner[patient]} and {f}")
    if seen != set(range(len(records))):
        raise PatientLeakError(f"{len(records) - len(seen)} records are in no fold")


def train_indices(folds: Sequence[Sequence[int]], fold: int) -> list[int]:
    held_out = set(folds[fold])
    return sorted(i for f in folds for i in f if i not in held_out)


def save_splits(
    path: str | os.PathLike[str], records: Sequence[Any], folds: Sequence[Sequence[int]], *, k: int | None = None, seed: int | None = None
) -> Path:
    """Write the folds as JSON (record paths and patients, so they can be checked later)."""
    doc = {
        "method": "StratifiedGroupKFold",
        "k": k if k is not None else len(folds),
        "seed": seed,
        "folds": [
            {
                "test_indices": [int(i) for i in fold],
                "patients": sorted({str(records[i].patient_id) for i in fold}),
                "paths": [getattr(records[i], "rel_path", str(getattr(records[i], "path", i))) for i in fold],
            }
            for fold in folds
        ],
    }
    return write_json(path, doc)


def load_splits(path: str | os.PathLike[str], records: Sequence[Any] | None = None) -> list[list[int]]:
    """Folds from ``save_splits``; with ``records``, map by path and re-check for leaks."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if records is None:
        return [list(f["test_indices"]) for f in doc["folds"]]
    by_path = {getattr(r, "rel_path", str(getattr(r, "path", ""))): i for i, r in enumerate(records)}
    folds = []
    for f in doc["folds"]:
        try:
            folds.append(sorted(by_path[p] for p in f["paths"]))
        except KeyError as err:
            raise ValueError(f"saved split names {err.args[0]}, which is not in the records") from None
    check_no_patient_leak(records, folds)
    return folds
