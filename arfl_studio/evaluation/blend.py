"""Window/level, invert and an overlay blended into uint8 RGB pixels (Qt-free, for exports)."""

from __future__ import annotations

import numpy as np


def blend_lut(gray: np.ndarray, heat: np.ndarray | None, lut: np.ndarray, opacity: float = 0.5,
              levels: tuple[float, float] = (0.0, 1.0), gray_levels: tuple[float, float] = (0.0, 1.0),
              invert: bool = False) -> np.ndarray:
    """``lut``: (256, 3) RGB in [0, 1] for the overlay between ``levels``; uint8 (H, W, 3)."""
    lo, hi = gray_levels
    g = np.clip((np.asarray(gray, dtype=np.float32) - lo) / max(hi - lo, 1e-6), 0, 1)
    if invert:
        g = 1 - g
    rgb = np.repeat(g[..., None], 3, axis=2)
    if heat is not None and opacity > 0:
        hlo, hhi = levels
        h = np.clip((np.asarray(heat, dtype=np.float32) - hlo) / max(hhi - hlo, 1e-6), 0, 1)
        colour = np.asarray(lut, dtype=np.float32)[np.round(h * (len(lut) - 1)).astype(np.int64)]
        rgb *= 1 - opacity
        rgb += opacity * colour
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)
