"""Statistics between methods of one run, each stating what it was computed on.

- On fold AUCs (the paper's test): two-sided Mann-Whitney U on the folds *both* methods
  finished, and beside it the paired Wilcoxon signed-rank test on the same folds (the
  folds hold the same patients for every method, so the pairs match). With k = 5 folds
  the smallest attainable two-sided p is 0.0079 (Mann-Whitney) and 0.0625 (Wilcoxon).
- On pooled out-of-fold predictions: each method's pooled AUC with its DeLong interval,
  and the paired DeLong test between two methods on the same images
  (:mod:`arfl_studio.evaluation.roc_stats`), over the folds both have predictions for.

Every result names its test, its folds and whether it used fewer folds than the run declares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arfl_studio.evaluation.roc_stats import pooled_oof_auc, pooled_paired_delong
from arfl_studio.experiments.fold_predictions import read_predictions
from arfl_studio.experiments.run_folder import fold_dir

MANN_WHITNEY = "Mann-Whitney U, two-sided, on the fold AUCs both methods have"
WILCOXON = "Wilcoxon signed-rank, two-sided, paired by fold"
PAIRED_DELONG = "paired DeLong, two-sided, on the pooled out-of-fold predictions of the images both methods scored"
PREDICTION_COLUMNS = {"standard_auc": "clean_logit", "adversarial_auc": "adversarial_logit"}


def _finite(v) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


def mann_whitney(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Two-sided Mann-Whitney U p of two lists of fold AUCs (None where either has fewer than 2 values)."""
    from scipy.stats import mannwhitneyu

    a = [v for v in a if _finite(v)]
    b = [v for v in b if _finite(v)]
    if len(a) < 2 or len(b) < 2:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def wilcoxon_paired(a: list[float], b: list[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p of paired values (None under 2 pairs; 1.0 when all pairs are equal)."""
    from scipy.stats import wilcoxon

    if len(a) < 2:
        return None
    if all(x == y for x, y in zip(a, b)):
        return 1.0
    return float(wilcoxon(a, b, alternative="two-sided").pvalue)


def fold_comparison(a: list[float | None], b: list[float | None], declared: int) -> dict:
    """Tests between two methods' per-fold values, on the folds both have."""
    folds = [k for k, (x, y) in enumerate(zip(a, b)) if _finite(x) and _finite(y)]
    xa, xb = [float(a[k] or 0.0) for k in folds], [float(b[k] or 0.0) for k in folds]  # finite: filtered above
    return {
        "test": MANN_WHITNEY,
        "p": mann_whitney(xa, xb),
        "paired_test": WILCOXON,
        "paired_p": wilcoxon_paired(xa, xb),
        "folds": folds,
        "n_folds": len(folds),
        "folds_declared": declared,
        "partial": len(folds) < declared,
    }


def fold_predictions(out: Path, key: str, seed_folder: int | None, folds: list[int]) -> dict[int, dict]:
    """fold -> its predictions (see :mod:`fold_predictions`) for the listed folds that stored them."""
    found = {}
    for fold in folds:
        predictions = read_predictions(fold_dir(out, key, fold, seed_folder))
        if predictions is not None:
            found[fold] = predictions
    return found


def _folds(predictions: dict[int, dict], column: str, folds: list[int]):
    return [(predictions[k]["label"], predictions[k][column]) for k in folds]


def pooled_auc(predictions: dict[int, dict], declared: int, level: float = 0.95) -> dict:
    """Pooled out-of-fold AUC with its DeLong interval, per metric, over the folds with predictions."""
    out = {}
    for metric, column in PREDICTION_COLUMNS.items():
        folds = sorted(k for k, p in predictions.items() if p[column] is not None)
        if not folds:
            continue
        try:
            estimate = pooled_oof_auc(_folds(predictions, column, folds), level)
        except ValueError:  # one class only among the pooled images
            continue
        out[metric] = {
            **estimate.to_dict(),
            "folds": folds,
            "n_folds": len(folds),
            "folds_declared": declared,
            "partial": len(folds) < declared,
        }
    return out


def paired_delong(a: dict[int, dict], b: dict[int, dict], declared: int) -> dict:
    """Paired DeLong tests per metric between two methods' predictions, on the folds and images both have."""
    out = {}
    for metric, column in PREDICTION_COLUMNS.items():
        folds = sorted(
            k
            for k in set(a) & set(b)
            if a[k][column] is not None and b[k][column] is not None and np.array_equal(a[k]["index"], b[k]["index"])
        )
        if not folds:
            continue
        try:
            auc_a, auc_b, z, p = pooled_paired_delong(_folds(a, column, folds), _folds(b, column, folds))
        except ValueError:
            continue
        n = int(sum(len(a[k]["index"]) for k in folds))
        out[metric] = {
            "test": PAIRED_DELONG,
            "auc": auc_a,
            "auc_other": auc_b,
            "z": z if math.isfinite(z) else None,
            "p": p,
            "n": n,
            "folds": folds,
            "n_folds": len(folds),
            "folds_declared": declared,
            "partial": len(folds) < declared,
        }
    return out
