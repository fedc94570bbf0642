"""Window/level, invert and an overlay blended into uint8 RGB pixels (Qt-free, for exports)."""

from __future__ import annotations

import numpy as np


def blend_lut(
    gray: np.ndarray,
    heat: np.ndarray | None,
    lut: np.ndarray,
    opacity: float = 0.5,
    levels: tuple[float, float] = (0.0, 1.0),
    gray_levels: tuple[float, float] = (0.0, 1.0),
    invert: bool = False,
) -> np.ndarray:
    """``lut``: (256, 3) RGB or (256, 4) RGBA in [0, 1] for the overlay between ``levels``; the
    alpha column (an alpha ramp) scales ``opacity`` per value, so a cold region leaves the image
    as it is. uint8 (H, W, 3)."""
    lo, hi = gray_levels
    g = np.clip((np.asarray(gray, dtype=np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)
    if invert:
        g = 1 - g
    rgb = np.repeat(g[..., None], 3, axis=2)
    if heat is not None and opacity > 0:
        hlo, hhi = levels
        h = np.clip((np.asarray(heat, dtype=np.float32) - hlo) / max(hhi - hlo, 1e-6), 0, 1)
        table = np.asarray(lut, dtype=np.float32)
        entry = table[np.round(h * (len(table) - 1)).astype(np.int64)]
        alpha = opacity * (entry[..., 3:4] if table.shape[1] == 4 else 1.0)
        rgb *= 1 - alpha
        rgb += alpha * entry[..., :3]
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
