"""AUC with its sampling error: DeLong intervals, the paired DeLong test, pooled out-of-fold AUC.

DeLong, DeLong & Clarke-Pearson (1988) estimate the variance of the empirical AUC
(the Mann-Whitney statistic) from its structural components; Sun & Xu (2014) compute
them from midranks in O(N log N) ("fast DeLong"), which is what this module does.

For m positives X and n negatives Y, with midranks T_z over all N = m + n scores,
T_x within the positives and T_y within the negatives:

    AUC     = (sum_i T_z(X_i) - m (m + 1) / 2) / (m n)
    V10_i   = (T_z(X_i) - T_x(X_i)) / n          (positive i's placement among negatives)
    V01_j   = 1 - (T_z(Y_j) - T_y(Y_j)) / m      (negative j's placement among positives)
    Var AUC = S10 / m + S01 / n                  (S: sample (co)variances, ddof = 1)

For two score sets on the same images, the covariance of the two AUCs comes from the
same formula with covariance matrices, giving the paired test
z = (AUC_a - AUC_b) / sqrt(Var_a + Var_b - 2 Cov_ab).

Labels are 0/1 (anything > 0.5 is positive); higher scores mean "positive". Ties count
one half, as in :func:`sklearn.metrics.roc_auc_score`. Intervals are the normal
interval AUC ± z·SE, clipped to [0, 1] (pROC's DeLong interval). Qt-free, numpy/scipy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtri
from scipy.stats import norm, rankdata


@dataclass(frozen=True)
class AUCEstimate:
    """An AUC with its DeLong standard error and interval, and what it was computed on."""

    auc: float
    lo: float
    hi: float
    se: float
    level: float
    n_positive: int
    n_negative: int
    folds: int | None = None  # pooled out-of-fold: how many folds' predictions were pooled

    @property
    def n(self) -> int:
        return self.n_positive + self.n_negative

    def to_dict(self) -> dict:
        return {**asdict(self), "n": self.n}

    def describe(self, percent: bool = True) -> str:
        """'AUC 81.2 % (95 % CI 74.0–88.4; n = 120: 40 pos / 80 neg)'."""
        f = (lambda v: f"{100 * v:.1f}") if percent else (lambda v: f"{v:.3f}")
        unit = " %" if percent else ""
        return (
            f"AUC {f(self.auc)}{unit} ({100 * self.level:g} % CI {f(self.lo)}–{f(self.hi)}; "
            f"n = {self.n}: {self.n_positive} pos / {self.n_negative} neg)"
        )


def _split(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """Scores (k, N) -> (positives (k, m), negatives (k, n)); refuses one-class or non-finite input."""
    y = np.asarray(y, dtype=float).reshape(-1) > 0.5
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != len(y):
        raise ValueError(f"{len(y)} labels but {s.shape[1]} scores")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores must be finite (NaN or infinite scores have no rank)")
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError(f"AUC needs both classes; got {m} positives and {n} negatives")
    return s[:, y], s[:, ~y]


def _components(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs (k,), V10 (k, m) and V01 (k, n) by Sun & Xu's midrank algorithm."""
    m, n = pos.shape[1], neg.shape[1]
    tx = rankdata(pos, axis=1)
    ty = rankdata(neg, axis=1)
    tz = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def delong_covariance(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """(AUCs (k,), their DeLong covariance (k, k)) for k score sets ``scores`` (k, N) on the same labels ``y``."""
    pos, neg = _split(y, scores)
    aucs, v10, v01 = _components(pos, neg)
    m, n = pos.shape[1], neg.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(aucs), len(aucs)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(aucs), len(aucs)))
    return aucs, s10 / m + s01 / n


def _interval(auc: float, se: float, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = float(ndtri(0.5 + level / 2))
    return max(0.0, auc - z * se), min(1.0, auc + z * se)


def delong_auc_ci(y, scores, level: float = 0.95) -> tuple[float, float, float, float]:
    """(auc, lo, hi, se): the empirical AUC of ``scores`` for labels ``y`` (0/1) and its DeLong interval.

    ``level`` is the two-sided coverage (0.95: a 95 % interval). Raises ``ValueError``
    when ``y`` holds one class only or a score is not finite.
    """
    aucs, cov = delong_covariance(y, np.asarray(scores, dtype=float)[None])
    auc, se = float(aucs[0]), math.sqrt(max(float(cov[0, 0]), 0.0))
    lo, hi = _interval(auc, se, level)
    return auc, lo, hi, se


def auc_estimate(y, scores, level: float = 0.95, folds: int | None = None) -> AUCEstimate:
    """:func:`delong_auc_ci` with the class counts, as an :class:`AUCEstimate`."""
    auc, lo, hi, se = delong_auc_ci(y, scores, level)
    t = np.asarray(y, dtype=float).reshape(-1) > 0.5
    return AUCEstimate(auc, lo, hi, se, level, int(t.sum()), int((~t).sum()), folds)


def paired_delong_test(y, scores_a, scores_b) -> tuple[float, float, float, float]:
    """(auc_a, auc_b, z, p): two-sided DeLong test that two score sets on the same images have equal AUC.

    ``scores_a`` and ``scores_b`` score the same images in the same order (labels ``y``).
    Identical AUCs give z = 0 and p = 1; a difference with zero variance gives p = 0.
    """
    aucs, cov = delong_covariance(y, np.vstack([np.asarray(scores_a, float), np.asarray(scores_b, float)]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15:
        z = 0.0 if abs(diff) < 1e-12 else math.copysign(math.inf, diff)
    else:
        z = diff / math.sqrt(var)
    p = 1.0 if z == 0 else float(2 * norm.sf(abs(z)))
    return float(aucs[0]), float(aucs[1]), z, p


def difference_se(y, scores_a, scores_b) -> float:
    """DeLong standard error of AUC_a - AUC_b for two score sets on the same images."""
    _, cov = delong_covariance(y, np.vstack([np.asarray(scores_a, float), np.asarray(scores_b, float)]))
    return math.sqrt(max(float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), 0.0))


def pooled_oof(folds: Iterable[tuple[ArrayLike, ArrayLike]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Concatenate per-fold (labels, scores) of out-of-fold predictions: (labels, scores, folds pooled)."""
    ys, ss, k = [], [], 0
    for fold_y, fold_s in folds:
        y, s = np.asarray(fold_y, dtype=float).reshape(-1), np.asarray(fold_s, dtype=float).reshape(-1)
        if len(y) != len(s):
            raise ValueError(f"a fold has {len(y)} labels but {len(s)} scores")
        ys.append(y)
        ss.append(s)
        k += 1
    if not k:
        raise ValueError("no folds to pool")
    return np.concatenate(ys), np.concatenate(ss), k


def pooled_oof_auc(folds: Iterable[tuple[ArrayLike, ArrayLike]], level: float = 0.95) -> AUCEstimate:
    """The AUC of all folds' held-out predictions pooled, with its DeLong interval.

    ``folds``: one (labels, scores) pair per fold, each scored by that fold's model on its
    own held-out images (every image appears once over all folds). Pooling ranks scores
    of different fold models against each other, so it also penalises models whose
    scores are not on a common scale; it complements, and does not replace, the mean
    (sd) of the per-fold AUCs.
    """
    y, s, k = pooled_oof(folds)
    return auc_estimate(y, s, level, folds=k)


def pooled_paired_delong(
    folds_a: Iterable[tuple[ArrayLike, ArrayLike]], folds_b: Iterable[tuple[ArrayLike, ArrayLike]]
) -> tuple[float, float, float, float]:
    """:func:`paired_delong_test` on two methods' pooled out-of-fold predictions of the same images.

    The folds must list the same images in the same order (labels are checked to agree).
    """
    ya, sa, _ = pooled_oof(folds_a)
    yb, sb, _ = pooled_oof(folds_b)
    if len(ya) != len(yb) or np.any((ya > 0.5) != (yb > 0.5)):
        raise ValueError("the two methods' pooled predictions are not on the same images")
    return paired_delong_test(ya, sa, sb)
