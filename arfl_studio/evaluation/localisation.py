"""Where does a model look? Saliency maps measured against lesion marks, in native space.

For one image (saliency map, lesion mask and breast mask on the native grid, pixel
spacing in mm) :func:`localise` gives

- ``pointing``: the pointing game (Zhang et al. 2016, "Top-down neural attention by
  excitation backprop"): 1 when the map's maximum lies within ``tolerance_mm`` of a
  lesion pixel, else 0; when several pixels share the maximum, the fraction of them
  that hit (a random pick among them; a constant map has no peak: ``pointing`` is None);
- ``energy_inside``: the share of the map's total |value| on lesion pixels;
- ``energy_off_breast``: the share that falls outside the breast (labels, markers,
  background);
- ``chance``: lesion area / breast area, what ``energy_inside`` of a map spread evenly
  over the breast would be; ``chance_pointing``: the same for the tolerance-grown
  lesions, what a maximum placed at random on the breast would score.

:func:`summarise` aggregates per method and :func:`paired_tests` compares two methods on
the same images: McNemar's exact test on pointing hits and the Wilcoxon signed-rank test
on ``energy_inside``. numpy/scipy only, no Qt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import Mapping, Sequence, cast

import numpy as np

DEFAULT_TOLERANCE_MM = 5.0


@dataclass(frozen=True)
class Localisation:
    """The localisation of one saliency map on one image; fractions in [0, 1]."""

    pointing: float | None
    energy_inside: float | None
    energy_off_breast: float | None
    chance: float
    chance_pointing: float
    peak_distance_mm: float | None  # from the map's (first) maximum to the nearest lesion pixel
    lesion_pixels: int
    breast_pixels: int

    def to_dict(self) -> dict:
        return asdict(self)


def _spacing(spacing_mm: float | Sequence[float] | None) -> tuple[float, float]:
    if spacing_mm is None:
        return 1.0, 1.0
    if np.isscalar(spacing_mm):
        return float(cast(float, spacing_mm)), float(cast(float, spacing_mm))
    row, col = cast(Sequence[float], spacing_mm)
    return float(row), float(col)


def localise(
    saliency: np.ndarray,
    lesions: np.ndarray,
    breast: np.ndarray,
    spacing_mm: float | Sequence[float] | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
) -> Localisation:
    """Pointing game, energy inside the lesions and off the breast, and chance, for one map.

    All three arrays share the native grid. ``spacing_mm`` is (row, column) mm per pixel
    (None: 1 mm, i.e. the tolerance is in pixels).
    """
    from scipy import ndimage

    values = np.abs(np.nan_to_num(np.asarray(saliency, dtype=np.float64)))
    lesions, breast = np.asarray(lesions, dtype=bool), np.asarray(breast, dtype=bool)
    if not values.shape == lesions.shape == breast.shape:
        raise ValueError(f"saliency {values.shape}, lesion mask {lesions.shape} and breast mask {breast.shape} must share the native grid")
    sampling = _spacing(spacing_mm)
    breast_area = int(breast.sum())
    lesion_area = int((lesions & breast).sum())
    if lesions.any():
        distance = ndimage.distance_transform_edt(~lesions, sampling=sampling)
        near = distance <= tolerance_mm
    else:
        distance, near = None, lesions
    chance = lesion_area / breast_area if breast_area else 0.0
    chance_pointing = int((near & breast).sum()) / breast_area if breast_area else 0.0
    total = float(values.sum())
    peak = float(values.max()) if values.size else 0.0
    if total <= 0 or peak <= float(values.min()) or distance is None:
        return Localisation(
            None,
            None if total <= 0 else float(values[lesions].sum() / total),
            None if total <= 0 else float(values[~breast].sum() / total),
            chance,
            chance_pointing,
            None,
            lesion_area,
            breast_area,
        )
    at_peak = values >= peak
    first = np.unravel_index(int(np.argmax(values)), values.shape)
    return Localisation(
        pointing=float(near[at_peak].mean()),
        energy_inside=float(values[lesions].sum() / total),
        energy_off_breast=float(values[~breast].sum() / total),
        chance=chance,
        chance_pointing=chance_pointing,
        peak_distance_mm=float(distance[first]),
        lesion_pixels=lesion_area,
        breast_pixels=breast_area,
    )


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def summarise(results: Sequence[Localisation]) -> dict:
    """Means over the images of one method (images where a metric is undefined are left out of it)."""
    return {
        "images": len(results),
        "pointing": _mean([r.pointing for r in results]),
        "pointing_images": sum(1 for r in results if r.pointing is not None),
        "chance_pointing": _mean([r.chance_pointing for r in results]),
        "energy_inside": _mean([r.energy_inside for r in results]),
        "chance": _mean([r.chance for r in results]),
        "energy_off_breast": _mean([r.energy_off_breast for r in results]),
        "median_peak_distance_mm": (
            float(np.median(d)) if (d := [r.peak_distance_mm for r in results if r.peak_distance_mm is not None]) else None
        ),
    }


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> dict:
    """McNemar's exact (binomial) test on paired hits: discordant counts and two-sided p."""
    from scipy.stats import binomtest

    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    p = float(binomtest(only_a, n, 0.5).pvalue) if n else 1.0
    return {"test": "McNemar exact", "only_first": only_a, "only_second": only_b, "p": p}


def wilcoxon_paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """Wilcoxon signed-rank test (two-sided) on paired values; p = 1 when every pair is equal."""
    from scipy.stats import wilcoxon

    diffs = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diffs.size == 0 or not np.any(diffs != 0):
        return {"test": "Wilcoxon signed-rank", "pairs": int(diffs.size), "median_difference": 0.0, "p": 1.0}
    result = wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return {
        "test": "Wilcoxon signed-rank",
        "pairs": int(diffs.size),
        "median_difference": float(np.median(diffs)),
        "p": float(result.pvalue),
    }


def paired_tests(per_method: Mapping[str, Sequence[Localisation | None]]) -> list[dict]:
    """Every pair of methods on the images both scored (lists aligned by image; None = not scored)."""
    tests = []
    for first, second in combinations(sorted(per_method), 2):
        pairs = [(x, y) for x, y in zip(per_method[first], per_method[second]) if x is not None and y is not None]
        hits = [(x.pointing >= 0.5, y.pointing >= 0.5) for x, y in pairs if x.pointing is not None and y.pointing is not None]
        energy = [(x.energy_inside, y.energy_inside) for x, y in pairs if x.energy_inside is not None and y.energy_inside is not None]
        tests.append(
            {
                "first": first,
                "second": second,
                "images": len(pairs),
                "pointing": mcnemar_exact([h[0] for h in hits], [h[1] for h in hits]),
                "energy_inside": wilcoxon_paired([e[0] for e in energy], [e[1] for e in energy]),
            }
        )
    return tests
