"""Where the breast is: the mask and crop box used by preprocessing.

Methods (``PreprocessSettings.crop``):
- ``"breast"`` (default): everything brighter than the *background level* — the
  darkest mode of the image histogram, plus a few times its noise — is a candidate;
  bright bands along the image edges (detector-edge stripes) are removed; the
  largest connected component (and anything touching its close neighbourhood) is
  the breast, holes filled. The level sits just above the background, so the dim
  fatty rim and the gradual fall-off at the skin line stay in; burned-in labels and
  other islands away from the breast drop out with the small components. This is
  the usual approach of mammography pipelines (a low threshold above the
  background, the largest object, holes filled) rather than a split of the
  histogram in two.
- ``"breast-only"``: the breast and nothing else (``breast_region``): the threshold from the
  breast/background histogram of the film (padding and edges left out), the largest component;
  everything not connected to it — film labels, markers, stripes — is blanked in the model input.
  The choice for digitised films and any data with burned-in labels.
- ``"otsu"``: Otsu's threshold instead of the background level. It splits the
  histogram into two classes, and on a real mammogram the split falls inside the
  dim rim, so it can cut the lower breast of an MLO or the nipple of a CC.
- ``"threshold"``: a fixed level in display units [0, 1].
- ``"none"``: the whole image.

Everything runs on a block-averaged copy of at most ~512 px a side (averaging also
lowers the noise), and the box is mapped back to full resolution with a margin.
"""

from __future__ import annotations

import numpy as np

CROP_METHODS = ("breast", "breast-only", "otsu", "threshold", "none")
DEFAULT_CROP = "breast"
_WORK_SIZE = 512  # longest side of the working copy


def otsu_threshold(pixels: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold on [0, 1] pixels (computed on a subsample for speed)."""
    step = max(1, int(np.sqrt(pixels.size / 250_000)))
    sample = pixels[::step, ::step]
    hist, edges = np.histogram(sample, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1e-12)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1e-12)
    between = w0 * w1 * (mu0 - mu1) ** 2
    # class 0 is bins 0..i inclusive: the threshold is the upper edge of bin i
    return float(edges[int(np.argmax(between[:-1])) + 1]) if between.size > 1 else 0.5


def background_level(pixels: np.ndarray) -> tuple[float, float]:
    """(level, noise) of the background: the darkest clear mode of the histogram.

    A mode counts when it stands out: a peak at least a tenth as high as the highest
    one and with a prominence of a twentieth of it, so histogram wiggles in a tail do
    not make one. ``noise`` is the spread of the pixels at or below the mode (the
    side tissue does not reach).
    """
    from scipy import ndimage

    values = np.asarray(pixels, dtype=np.float32).ravel()
    bins = int(np.clip(values.size // 400, 64, 512))  # a few hundred pixels a bin
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    smooth = ndimage.gaussian_filter1d(hist.astype(np.float64), 1.5, mode="constant")
    first = _first_clear_peak(smooth, height=0.1 * float(smooth.max()), prominence=0.05 * float(smooth.max()))
    mode = float(edges[first] + edges[first + 1]) / 2 if first is not None else float(np.percentile(values, 1))
    below = values[values <= mode + 0.5 / bins] - mode
    noise = float(np.sqrt(np.mean(below * below))) if below.size else 0.0
    return mode, noise


def _first_clear_peak(curve: np.ndarray, height: float, prominence: float) -> int | None:
    """Index of the first local maximum at least ``height`` high that rises at least
    ``prominence`` above the lowest point between it and any higher part of the curve
    on each side (the higher of the two bases, as in scipy.signal.find_peaks; done here
    to avoid importing scipy.signal in every worker)."""
    n = curve.size
    for i in range(n):
        v = curve[i]
        if v < height or (i > 0 and curve[i - 1] >= v) or (i + 1 < n and curve[i + 1] > v):
            continue
        left = i
        while left > 0 and curve[left - 1] <= v:
            left -= 1
        right = i
        while right + 1 < n and curve[right + 1] <= v:
            right += 1
        left_base = float(curve[left : i + 1].min()) if left > 0 else 0.0
        right_base = float(curve[i : right + 1].min()) if right + 1 < n else 0.0
        if v - max(left_base, right_base) >= prominence:
            return i
    return None


def _block_mean(pixels: np.ndarray, step: int) -> np.ndarray:
    rows, cols = pixels.shape
    if step == 1:
        return np.asarray(pixels, dtype=np.float32)
    pad_r, pad_c = (-rows) % step, (-cols) % step
    padded = np.pad(np.asarray(pixels, dtype=np.float32), ((0, pad_r), (0, pad_c)), mode="edge")
    return padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).mean(axis=(1, 3))


def _edge_stripes(mask: np.ndarray, max_width: int, chest_wall: str, coverage: float = 0.95) -> np.ndarray:
    """Lines along the image edges that are bright over (almost) their whole length,
    up to ``max_width`` deep. The chest-wall edge is left alone (the breast meets the
    image edge there by design), and a band deeper than ``max_width`` is tissue, not
    a stripe, and is kept."""
    stripes = np.zeros_like(mask)
    views = {
        "top": (mask, stripes),
        "bottom": (mask[::-1], stripes[::-1]),
        "left": (mask.T, stripes.T),
        "right": (mask.T[::-1], stripes.T[::-1]),
    }
    for side, (lines, out) in views.items():
        if side == chest_wall:
            continue
        depth = 0
        while depth < lines.shape[0] and lines[depth].mean() >= coverage:
            depth += 1
        if 0 < depth <= max_width:
            out[:depth] = True
    return stripes


def breast_mask(pixels: np.ndarray, method: str = DEFAULT_CROP, threshold: float = 0.1, fill_holes: bool = True) -> tuple[np.ndarray, int]:
    """(mask on the working copy, step): the breast, holes filled; ``step`` is the
    working copy's pixel size in native pixels. An all-False mask means "not found".
    (Filling holes never changes the box, so ``breast_bbox`` skips it.)"""
    from scipy import ndimage

    rows, cols = pixels.shape
    step = max(1, int(np.ceil(max(rows, cols) / _WORK_SIZE)))
    small = _block_mean(pixels, step)
    if method == "breast":
        mode, noise = background_level(small)
        spread = float(np.percentile(small, 99.5)) - mode
        if 4.0 * noise > 0.5 * spread:
            # the darkest mode is as wide as the tissue's range: no background to
            # separate (tissue fills the image); keep everything
            return np.ones_like(small, dtype=bool), step
        level = mode + max(4.0 * noise, 0.02 * spread, 1e-3)
    elif method == "otsu":
        level = otsu_threshold(small)
    elif method == "threshold":
        level = threshold
    else:
        raise ValueError(f"unknown crop method {method!r}; allowed: {', '.join(CROP_METHODS)}")
    mask = small > level
    if method == "breast":
        chest_wall = "right" if chest_wall_on_right(small) else "left"
        mask &= ~_edge_stripes(mask, max(2, int(0.03 * max(mask.shape))), chest_wall)
    mask = ndimage.binary_opening(mask, iterations=1)
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.zeros_like(mask), step
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    breast = labels == int(np.argmax(sizes))
    if method == "breast":
        # parts of the breast split off by a dark gap (a nipple in profile, a thin
        # fold) lie right next to it; labels and markers lie further away
        reach = max(2, int(0.01 * max(mask.shape)))
        near = np.unique(labels[ndimage.binary_dilation(breast, iterations=reach)])
        breast = np.isin(labels, near[near > 0])
        if fill_holes:
            breast = ndimage.binary_fill_holes(breast)
    return breast, step


def breast_bbox(pixels: np.ndarray, method: str = DEFAULT_CROP, threshold: float = 0.1, margin: float = 0.02) -> tuple[int, int, int, int]:
    """(row0, row1, col0, col1) of the breast plus ``margin`` (a fraction of the image size)."""
    rows, cols = pixels.shape
    if method == "none":
        return 0, rows, 0, cols
    if method == "breast-only":
        from arfl_studio.data.preprocess.breast_region import breast_region

        mask, step = breast_region(pixels), 1
    else:
        mask, step = breast_mask(pixels, method, threshold, fill_holes=False)
    return mask_bbox(mask, step, (rows, cols), margin)


def mask_bbox(mask: np.ndarray, step: int, shape: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The box of ``mask`` (on a grid of ``step`` native pixels) plus ``margin``, in native pixels;
    the whole image when the mask is empty or the box degenerate."""
    rows, cols = shape
    found_rows, found_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if found_rows.size == 0:
        return 0, rows, 0, cols
    pad_r, pad_c = int(margin * rows), int(margin * cols)
    r0 = max(0, int(found_rows[0]) * step - pad_r)
    r1 = min(rows, (int(found_rows[-1]) + 1) * step + pad_r)
    c0 = max(0, int(found_cols[0]) * step - pad_c)
    c1 = min(cols, (int(found_cols[-1]) + 1) * step + pad_c)
    if r1 - r0 < 4 or c1 - c0 < 4:
        return 0, rows, 0, cols
    return r0, r1, c0, c1


def chest_wall_on_right(pixels: np.ndarray) -> bool:
    """True when the right half holds more tissue than the left (breast faces left)."""
    step = max(1, pixels.shape[0] // 256)
    columns = pixels[::step].mean(axis=0, dtype=np.float64)
    half = columns.size // 2
    return float(columns[columns.size - half :].sum()) > float(columns[:half].sum())


def native_breast_mask(pixels: np.ndarray, method: str = DEFAULT_CROP, threshold: float = 0.1) -> np.ndarray:
    """The breast on the full native grid (bool, ``pixels.shape``): what localisation
    counts as "on the breast" (labels, markers and background are off it)."""
    rows, cols = pixels.shape
    if method == "none":
        return np.ones((rows, cols), dtype=bool)
    if method == "breast-only":
        from arfl_studio.data.preprocess.breast_region import breast_region

        return breast_region(pixels)
    mask, step = breast_mask(pixels, method, threshold)
    if step > 1:
        mask = np.repeat(np.repeat(mask, step, axis=0), step, axis=1)
    return np.ascontiguousarray(mask[:rows, :cols])
