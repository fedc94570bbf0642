"""What real mammograms carry besides the breast: burned-in labels and edge stripes.

Drawn on the image as stored (after any left-right flip), so text reads the right way:
- a laterality/view label ("LCC", "RMLO") in bright block letters, in a corner away
  from the breast, as clinical systems burn them into the pixels;
- a bright stripe along an image edge away from the chest wall, where the detector
  or collimator edge shows.
Each returns the mask of what it drew, so tests can check that the crop cuts it.
"""

from __future__ import annotations

import numpy as np

# 5x7 block letters, one string per row ("#" = on)
_FONT = {
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
}


def text_bitmap(text: str, scale: int) -> np.ndarray:
    """Bool bitmap of ``text`` in the block font, each font pixel ``scale`` pixels wide."""
    glyphs = []
    for ch in text:
        glyph = np.array([[c == "#" for c in row] for row in _FONT[ch]], dtype=bool)
        glyphs.append(glyph)
        glyphs.append(np.zeros((7, 1), dtype=bool))  # letter spacing
    bitmap = np.concatenate(glyphs[:-1], axis=1)
    return np.kron(bitmap, np.ones((scale, scale), dtype=bool))


def burn_label(img: np.ndarray, breast: np.ndarray, text: str, chest_wall_left: bool, rng: np.random.Generator) -> np.ndarray:
    """Burn ``text`` into a corner on the side away from the chest wall, clear of the
    breast; returns the label's mask (all False when no corner is free)."""
    from scipy import ndimage

    h, w = img.shape
    scale = max(1, int(round(0.028 * h / 7)))
    bitmap = text_bitmap(text, scale)
    bh, bw = bitmap.shape
    inset_r, inset_c = max(2, int(0.03 * h)), max(2, int(0.03 * w))
    if bh + 2 * inset_r > h or bw + 2 * inset_c > w:
        return np.zeros_like(breast)
    clearance = ndimage.binary_dilation(breast, iterations=max(2, int(0.03 * max(h, w))))
    col = w - inset_c - bw if chest_wall_left else inset_c
    rows = [inset_r, h - inset_r - bh]
    if rng.random() < 0.5:
        rows.reverse()
    for row in rows:
        if not clearance[row : row + bh, col : col + bw].any():
            mask = np.zeros_like(breast)
            mask[row : row + bh, col : col + bw] = bitmap
            img[mask] = rng.uniform(0.95, 1.0)
            return mask
    return np.zeros_like(breast)


def add_edge_stripe(img: np.ndarray, side: str, rng: np.random.Generator) -> np.ndarray:
    """A bright band a few pixels deep along ``side`` ("top", "bottom", "left", "right")."""
    h, w = img.shape
    mask = np.zeros(img.shape, dtype=bool)
    depth = max(2, int(round(rng.uniform(0.006, 0.012) * (h if side in ("top", "bottom") else w))))
    region = {"top": np.s_[:depth, :], "bottom": np.s_[h - depth :, :], "left": np.s_[:, :depth], "right": np.s_[:, w - depth :]}[side]
    mask[region] = True
    level = rng.uniform(0.85, 1.0)
    img[region] = np.clip(level + rng.normal(0.0, 0.01, size=img[region].shape), 0.0, 1.0)
    return mask
