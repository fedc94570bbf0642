"""Per-image out-of-fold predictions of a fold model, beside its manifest: ``fold_K/predictions.json``.

::

    {"format": 1, "fold": K, "index": [...], "label": [...], "clean_logit": [...],
     "adversarial_logit": [...] or null}

``index`` is each image's position in ``splits.json``'s records (as its ``test_indices``):
no patient IDs or paths beyond what splits.json already holds. Images that could not be
read during the evaluation are left out (the fold manifest lists them). These files let
:func:`arfl_studio.experiments.results.collect` pool the folds' predictions (pooled
out-of-fold AUC with its DeLong interval) and compare two methods on the same images
(paired DeLong test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from arfl_studio import atomic
from arfl_studio.experiments.run_folder import read_json

PREDICTIONS = "predictions.json"
FORMAT = 1


def record_name(record) -> str:
    """The name a skipped image is reported under (as :class:`~arfl_studio.experiments.sources.SkipUnreadable`)."""
    return str(getattr(record, "rel_path", "") or getattr(record, "path", ""))


def evaluated_indices(records: Sequence, indices: Sequence[int], skipped: Sequence[str]) -> list[int]:
    """The held-out ``indices`` (positions in ``records``) that were evaluated: all but the skipped names."""
    gone = set(skipped)
    return [i for i in indices if record_name(records[i]) not in gone]


def write_predictions(folder: Path, fold: int, indices: Sequence[int], label, clean_logit, adversarial_logit=None) -> Path | None:
    """Write ``folder/predictions.json`` atomically; None (nothing written) when the counts disagree."""
    labels, clean = np.asarray(label).reshape(-1), np.asarray(clean_logit, dtype=float).reshape(-1)
    adversarial = None if adversarial_logit is None else np.asarray(adversarial_logit, dtype=float).reshape(-1)
    if not (len(indices) == len(labels) == len(clean)) or (adversarial is not None and len(adversarial) != len(clean)):
        return None
    doc = {
        "format": FORMAT,
        "fold": fold,
        "index": [int(i) for i in indices],
        "label": [int(v > 0.5) for v in labels],
        "clean_logit": [float(v) for v in clean],
        "adversarial_logit": None if adversarial is None else [float(v) for v in adversarial],
    }
    return atomic.write_json(Path(folder) / PREDICTIONS, doc)


def read_predictions(folder: Path) -> dict | None:
    """A fold's predictions as numpy arrays (``index``, ``label``, ``clean_logit``, ``adversarial_logit``), or None.

    None when the file is missing, damaged, or its columns disagree in length or hold non-finite logits.
    """
    doc = read_json(Path(folder) / PREDICTIONS)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    try:
        out: dict[str, np.ndarray | None] = {name: np.asarray(doc[name], dtype=float) for name in ("index", "label", "clean_logit")}
        adv = doc.get("adversarial_logit")
        out["adversarial_logit"] = None if adv is None else np.asarray(adv, dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    columns = [v for v in out.values() if v is not None]
    if len({len(v) for v in columns}) != 1 or not all(np.all(np.isfinite(v)) for v in columns):
        return None
    out["index"] = np.asarray(out["index"]).astype(int)
    return out
