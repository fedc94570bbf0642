"""DeLong AUC intervals, the paired DeLong test and pooled out-of-fold AUC (evaluation/roc_stats)."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from arfl_studio.evaluation.roc_stats import (
    auc_estimate,
    delong_auc_ci,
    delong_covariance,
    paired_delong_test,
    pooled_oof_auc,
    pooled_paired_delong,
)


def _data(n=300, seed=0, shift=1.0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    s = rng.normal(size=n) + shift * y
    if ties:
        s = np.round(s * 2) / 2  # many tied scores
    return y, s


def _slow_delong(y, s1, s2):
    """DeLong 1988 structural components by the O(mn) definition (independent of the midrank code)."""
    y = np.asarray(y) > 0.5

    def psi(a, b):
        return (a[:, None] > b[None, :]) + 0.5 * (a[:, None] == b[None, :])

    comps = []
    for s in (s1, s2):
        k = psi(s[y], s[~y])
        comps.append((k.mean(), k.mean(axis=1), k.mean(axis=0)))
    m, n = y.sum(), (~y).sum()
    v10 = np.vstack([c[1] for c in comps])
    v01 = np.vstack([c[2] for c in comps])
    return np.array([c[0] for c in comps]), np.cov(v10) / m + np.cov(v01) / n


@pytest.mark.parametrize("ties", [False, True])
def test_auc_equals_sklearn_and_covariance_equals_the_definition(ties):
    y, s1 = _data(ties=ties)
    _, s2 = _data(seed=1, ties=ties)
    s2 = s1 + 0.8 * s2  # correlated second score
    auc, lo, hi, se = delong_auc_ci(y, s1)
    assert auc == pytest.approx(roc_auc_score(y, s1), abs=1e-12)
    aucs, cov = delong_covariance(y, np.vstack([s1, s2]))
    slow_aucs, slow_cov = _slow_delong(y, s1, s2)
    np.testing.assert_allclose(aucs, slow_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, slow_cov, rtol=1e-9, atol=1e-15)
    assert se == pytest.approx(math.sqrt(cov[0, 0]))
    assert lo < auc < hi and hi - lo == pytest.approx(2 * 1.959964 * se, rel=1e-4)


def test_delong_variance_matches_the_bootstrap():
    y, s = _data(n=400, seed=3)
    _, _, _, se = delong_auc_ci(y, s)
    rng = np.random.default_rng(7)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    boot = []
    for _ in range(600):  # stratified: class counts fixed, as DeLong's variance assumes
        idx = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        boot.append(roc_auc_score(y[idx], s[idx]))
    assert se == pytest.approx(np.std(boot, ddof=1), rel=0.15)


def test_interval_level_and_counts():
    y, s = _data(n=120)
    est = auc_estimate(y, s, level=0.9)
    wide = auc_estimate(y, s, level=0.99)
    assert wide.lo < est.lo < est.auc < est.hi < wide.hi
    assert (est.n_positive, est.n_negative) == (int(y.sum()), int((1 - y).sum()))
    assert "90 % CI" in est.describe() and f"n = {len(y)}" in est.describe()
    with pytest.raises(ValueError, match="both classes"):
        delong_auc_ci(np.ones(5), np.arange(5.0))
    with pytest.raises(ValueError, match="finite"):
        delong_auc_ci([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4])


def test_paired_test_detects_a_real_difference_and_not_an_identical_score():
    y, s = _data(n=300, seed=5, shift=1.5)
    noise = np.random.default_rng(9).normal(size=len(y)) * 2.0
    a, b, z, p = paired_delong_test(y, s, s + noise)
    assert a > b and z > 0 and p < 0.01
    assert a == pytest.approx(roc_auc_score(y, s)) and b == pytest.approx(roc_auc_score(y, s + noise))
    assert paired_delong_test(y, s, 3 * s + 1)[2:] == (0.0, 1.0)  # same ranking: same AUC


def test_paired_test_p_values_are_calibrated_under_the_null():
    """Two noisy copies of one score: the null holds; about 5 % of tests may reject at 0.05."""
    rng = np.random.default_rng(11)
    rejections = 0
    for _ in range(200):
        y = (rng.random(150) < 0.4).astype(int)
        base = rng.normal(size=150) + y
        rejections += paired_delong_test(y, base + rng.normal(size=150), base + rng.normal(size=150))[3] < 0.05
    assert rejections / 200 < 0.12


def test_pooled_oof_auc_pools_the_folds():
    y, s = _data(n=200, seed=2)
    folds = [(y[i::4], s[i::4]) for i in range(4)]
    est = pooled_oof_auc(folds)
    order = np.concatenate([np.arange(i, 200, 4) for i in range(4)])
    assert est.auc == pytest.approx(roc_auc_score(y[order], s[order]))
    assert est.folds == 4 and est.n == 200
    a, b, z, p = pooled_paired_delong(folds, [(fy, fs + 1.0) for fy, fs in folds])
    assert a == b and p == 1.0
    with pytest.raises(ValueError, match="same images"):
        pooled_paired_delong(folds, folds[:3])
