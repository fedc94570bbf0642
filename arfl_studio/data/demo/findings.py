"""Findings of the demo mammograms: where lesions go and how they are drawn.

Malignant breasts get a spiculated mass (irregular core, radiating spicules) and/or
a cluster of fine calcifications; benign breasts a round, smooth-margined mass, a
few coarse scattered calcifications, or nothing visible. Lesions are faint relative
to the texture and their size and contrast vary, so a small CNN needs to learn
margin shape rather than "is there a blob".
"""

from __future__ import annotations

import numpy as np

# Conspicuity of the findings (fractions of the view's shorter side; contrast in display units).
# The malignant masses were sized so the demo's small CNN, trained for about a minute on
# 48-px images, reaches a held-out AUC of about 0.85-0.9 (docs/data.md, "Demo data"): smaller
# or fainter, and its training failed in some folds (AUC 0.55-0.75); the 10 % of cancers
# shown only as fine calcifications, invisible at 48 px, keep AUC away from 1.
MASS_SHARE = 0.90  # malignant breasts with a spiculated mass; the rest show only calcifications
CALCS_WITH_MASS = 0.30  # malignant breasts with both a mass and a calcification cluster
MALIGNANT_RADIUS = (0.08, 0.12)
MALIGNANT_CONTRAST = (0.30, 0.45)
BENIGN_MASS_SHARE = 0.35
BENIGN_CALCS_SHARE = 0.20
BENIGN_RADIUS = (0.03, 0.055)
BENIGN_CONTRAST = (0.06, 0.14)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _patch(h: int, w: int, cy: float, cx: float, half: int):
    # A finding near (or past) the border gets a clipped, possibly empty, patch.
    y0 = min(max(0, int(cy) - half), h)
    x0 = min(max(0, int(cx) - half), w)
    y1, x1 = max(y0, min(h, int(cy) + half + 1)), max(x0, min(w, int(cx) + half + 1))
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    return (slice(y0, y1), slice(x0, x1)), yy - cy, xx - cx


def _spiculated_mass(img, rng, cy, cx, radius, contrast):
    h, w = img.shape
    reach = radius * rng.uniform(2.2, 3.2)
    sl, dy, dx = _patch(h, w, cy, cx, int(reach) + 2)
    rr = np.sqrt(dy * dy + dx * dx)
    theta = np.arctan2(dy, dx)
    bumps = np.zeros_like(theta)
    for k in range(2, 7):  # irregular margin
        bumps += rng.uniform(0.0, 0.16) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    core = _sigmoid((radius * (1.0 + bumps) - rr) / max(radius * 0.12, 0.4))
    lesion = core * (0.75 + 0.25 * np.clip(1.0 - rr / radius, 0.0, 1.0))
    n = int(rng.integers(7, 15))
    for angle in rng.uniform(0, 2 * np.pi, n):
        length = reach * rng.uniform(0.6, 1.0)
        ux, uy = np.cos(angle), np.sin(angle)
        t = np.clip(dx * ux + dy * uy, 0.0, length)
        d = np.sqrt((dx - t * ux) ** 2 + (dy - t * uy) ** 2)
        width = max(0.45, radius * rng.uniform(0.06, 0.11))
        spike = np.exp(-((d / width) ** 2)) * (1.0 - t / length) * 0.8
        lesion = np.maximum(lesion, spike)
    img[sl] += contrast * lesion


def _round_mass(img, rng, cy, cx, radius, contrast):
    h, w = img.shape
    sl, dy, dx = _patch(h, w, cy, cx, int(radius * 1.6) + 2)
    ecc = rng.uniform(0.75, 1.0)
    angle = rng.uniform(0, np.pi)
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ecc
    rr = np.sqrt(u * u + v * v)
    lesion = _sigmoid((radius - rr) / max(radius * 0.07, 0.35)) * (0.85 + 0.15 * np.clip(1 - rr / radius, 0, 1))
    img[sl] += contrast * lesion


def _calcifications(img, rng, cy, cx, spread, count, size, brightness):
    h, w = img.shape
    for _ in range(count):
        py, px = cy + rng.normal(0, spread), cx + rng.normal(0, spread)
        s = size * rng.uniform(0.7, 1.3)
        sl, dy, dx = _patch(h, w, py, px, int(3 * s) + 2)
        img[sl] += brightness * rng.uniform(0.6, 1.0) * np.exp(-(dx * dx + dy * dy) / (2 * s * s))


def draw_findings(img: np.ndarray, rng: np.random.Generator, view: str, findings: list[dict]) -> None:
    """Add the breast's findings to one view (in place); positions are fractions of the view."""
    h, w = img.shape
    scale = min(h, w)
    for finding in findings:
        cy = finding["y"] * h
        cx = finding["x"] * w if view == "CC" else finding["x"] * w * 0.95
        if view == "MLO":
            cy = np.clip(cy + finding["mlo_shift"] * h, 0.1 * h, 0.9 * h)
        kind = finding["kind"]
        if kind == "spiculated":
            _spiculated_mass(img, rng, cy, cx, finding["radius"] * scale, finding["contrast"])
        elif kind == "round":
            _round_mass(img, rng, cy, cx, finding["radius"] * scale, finding["contrast"])
        elif kind == "fine_calcs":
            _calcifications(
                img, rng, cy, cx, finding["spread"] * scale, finding["count"], max(0.45, 0.004 * scale), finding["contrast"] * 2.2
            )
        elif kind == "coarse_calcs":
            _calcifications(
                img, rng, cy, cx, finding["spread"] * scale, finding["count"], max(0.9, 0.009 * scale), finding["contrast"] * 1.6
            )


def plan_findings(rng: np.random.Generator, label: int | None) -> list[dict]:
    """Lesions of one breast (same place in both views)."""

    def place(kind: str, **kw) -> dict:
        return {
            "kind": kind,
            "y": rng.uniform(0.32, 0.68),
            "x": rng.uniform(0.18, 0.55),
            "mlo_shift": rng.uniform(-0.08, 0.08),
            **kw,
        }

    if label is None:
        return []
    if label == 1:
        r = rng.random()
        out = []
        # Malignant: a dense spiculated mass (and/or a bright fine-calcification cluster)
        # sized so it stays visible after the demo's downsampling to 64 px (radius
        # >= ~3 px there); its contrast varies so some cancers stay subtle.
        if r < MASS_SHARE:
            out.append(place("spiculated", radius=rng.uniform(*MALIGNANT_RADIUS), contrast=rng.uniform(*MALIGNANT_CONTRAST)))
        if r >= MASS_SHARE - CALCS_WITH_MASS:
            out.append(
                place("fine_calcs", spread=rng.uniform(0.015, 0.03), count=int(rng.integers(12, 26)), contrast=rng.uniform(0.14, 0.22))
            )
        return out
    # Benign: often nothing; otherwise smaller, fainter round masses or a few coarse
    # calcifications. The overlap with small, faint malignant masses keeps AUC below 1.
    r = rng.random()
    if r < BENIGN_MASS_SHARE:
        return [place("round", radius=rng.uniform(*BENIGN_RADIUS), contrast=rng.uniform(*BENIGN_CONTRAST))]
    if r < BENIGN_MASS_SHARE + BENIGN_CALCS_SHARE:
        return [place("coarse_calcs", spread=rng.uniform(0.06, 0.12), count=int(rng.integers(2, 5)), contrast=rng.uniform(0.08, 0.16))]
    return []
