"""Model-space maps sampled on a coarse native grid, for display (Qt-free).

``model_to_native`` (data.geometry) gives the full native grid, which a viewer does
not need for a 4000x5000 image: a display level with ``step`` native pixels per
display pixel is sampled at the centres of its blocks, with the same bilinear rule,
so the overlay stays registered with the base image's pyramid level.
"""

from __future__ import annotations

import numpy as np

from arfl_studio.data.preprocess.geometry import Geometry, placement


def model_to_native_grid(model_map: np.ndarray, geometry: Geometry, fit: str = "stretch", step: int = 1, fill: float = 0.0) -> np.ndarray:
    """(floor(rows/step), floor(cols/step)) map; ``step=1`` equals ``model_to_native``."""
    from scipy import ndimage

    model_map = np.asarray(model_map, dtype=np.float32)
    rows, cols = geometry.shape
    out_r, out_c = rows // step, cols // step
    place = placement(geometry.crop_shape, model_map.shape, fit, geometry.scale)
    inner = model_map[place.top : place.top + place.rows, place.left : place.left + place.cols]
    r0, r1, c0, c1 = geometry.bbox
    crop_r, crop_c = r1 - r0, c1 - c0
    # native pixel index at each display pixel's block centre
    rn = np.arange(out_r, dtype=np.float64) * step + (step - 1) / 2
    cn = np.arange(out_c, dtype=np.float64) * step + (step - 1) / 2
    cf = (cols - 1 - cn) if geometry.flip else cn  # column in the oriented image
    rc, cc = rn - r0, cf - c0  # crop pixel index
    keep_r = (rc > -0.5) & (rc < crop_r - 0.5)
    keep_c = (cc > -0.5) & (cc < crop_c - 0.5)
    out = np.full((out_r, out_c), fill, dtype=np.float32)
    if not keep_r.any() or not keep_c.any():
        return out
    ri = np.clip((rc[keep_r] + 0.5) * (place.rows / crop_r) - 0.5, 0, place.rows - 1)
    ci = np.clip((cc[keep_c] + 0.5) * (place.cols / crop_c) - 0.5, 0, place.cols - 1)
    coords = np.meshgrid(ri, ci, indexing="ij")
    values = ndimage.map_coordinates(inner, coords, order=1, mode="nearest")
    out[np.ix_(keep_r, keep_c)] = values
    return out
