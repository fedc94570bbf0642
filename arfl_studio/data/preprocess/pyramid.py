"""Display pyramid of a large image: block means over 2^k x 2^k pixels (Qt-free).

Striding (keeping every k-th pixel) can drop a microcalcification of one or two
pixels; a block mean keeps its contribution. Level k covers the first
``floor(rows / 2^k) * 2^k`` rows (likewise columns): at most 2^k - 1 edge pixels
are left out of a zoomed-out picture, never of the native level 0.
"""

from __future__ import annotations

import math

import numpy as np


def block_mean2(image: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block (odd last row/column dropped)."""
    rows, cols = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    a = image[:rows, :cols]
    # float32 sums of four values: exact enough, and half the memory of float64
    return ((a[0::2, 0::2] + a[1::2, 0::2]) + (a[0::2, 1::2] + a[1::2, 1::2])) * np.float32(0.25)


class Pyramid:
    """Levels 0 (the image itself) .. n, each half the size of the one before, down to ``min_px``."""

    def __init__(self, image: np.ndarray, min_px: int = 256):
        level = np.ascontiguousarray(image, dtype=np.float32)
        self.levels = [level]
        self._range: tuple[float, float] | None = None
        while min(level.shape) >= 2 * min_px:
            level = block_mean2(level)
            self.levels.append(level)

    def value_range(self) -> tuple[float, float]:
        if self._range is None:
            self._range = (float(np.min(self.base)), float(np.max(self.base)))
        return self._range

    @property
    def base(self) -> np.ndarray:
        return self.levels[0]

    def step(self, k: int) -> int:
        """Native pixels per display pixel along each axis at level k."""
        return 2**k

    def covered(self, k: int) -> tuple[int, int]:
        """(rows, cols) of native pixels that level k covers."""
        r, c = self.levels[k].shape
        return r * 2**k, c * 2**k

    def level_for(self, native_per_screen_px: float) -> int:
        """The coarsest level that still has at least one display pixel per screen pixel."""
        if not native_per_screen_px > 1:
            return 0
        return max(0, min(len(self.levels) - 1, int(math.floor(math.log2(native_per_screen_px)))))
