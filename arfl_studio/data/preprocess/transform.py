"""Preprocessing for training, and the torch Dataset.

Steps, each a setting (``PreprocessSettings``):
1. decode (``read_mammogram``: float32 [0, 1], tissue bright);
2. ``orient``: flip left-right so every breast's chest wall is on the left (decided
   from the image itself, the side holding more tissue, not from tags);
3. ``crop``: the breast's box plus ``margin`` (``crop.py``): "breast" (default: a
   level just above the background, largest component), "breast-only" (the breast region
   of ``breast_region``; everything not connected to it is blanked), "otsu", "threshold"
   (fixed ``threshold``), or "none";
3b. ``intensity``: "as-read", or "breast-percentile" (the in-breast 1st/99th percentiles
   map to 0/1, background 0: films and digital images on one scale);
4. resize to ``size`` (rows, columns), antialiased (Gaussian prefilter + bilinear):
   ``fit = "stretch"`` fills the input (the paper's choice, aspect ratio not kept),
   ``fit = "pad"`` keeps the aspect ratio and letterboxes with black, exactly where
   ``geometry.placement`` says, so maps come back onto the anatomy; with ``pixel_mm`` every
   image is resampled to that pixel size (from its DICOM pixel spacing, recorded as
   ``Geometry.scale``) instead of filling the input, so a lesion is as many pixels wide in every
   breast (a small breast is not magnified, a large one shrinks only if it would not fit);
5. ``channels``: 1, or 3 (replicated, for ImageNet backbones) at load time.

The on-disk cache is ``cache.PreprocessCache``; ``preprocess_records`` warms it.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from arfl_studio.data.dicom.decode_pool import read_mammogram_isolated
from arfl_studio.data.preprocess.breast_region import breast_on_right, breast_region, normalise_in_breast
from arfl_studio.data.preprocess.crop import breast_bbox, chest_wall_on_right, mask_bbox
from arfl_studio.data.preprocess.geometry import Geometry, placement
from arfl_studio.data.preprocess.settings import PreprocessSettings


def resize_image(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased resize of a float32 image to (rows, columns)."""
    from scipy import ndimage

    rows, cols = pixels.shape
    out_r, out_c = int(size[0]), int(size[1])
    if (rows, cols) == (out_r, out_c):
        return pixels.astype(np.float32, copy=True)
    zoom = (out_r / rows, out_c / cols)
    sigma = [max(0.0, (1.0 / z - 1.0) / 2.0) for z in zoom]
    src = ndimage.gaussian_filter(pixels, sigma=sigma, mode="nearest") if max(sigma) > 0.3 else pixels
    # sample at pixel centres (align corners = False)
    rr = (np.arange(out_r, dtype=np.float32) + 0.5) / zoom[0] - 0.5
    cc = (np.arange(out_c, dtype=np.float32) + 0.5) / zoom[1] - 0.5
    coords = np.meshgrid(np.clip(rr, 0, rows - 1), np.clip(cc, 0, cols - 1), indexing="ij")
    out = ndimage.map_coordinates(src, coords, order=1, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def fit_image(crop: np.ndarray, size: tuple[int, int], fit: str = "stretch", scale: float | None = None) -> np.ndarray:
    """The crop resized into a model input of ``size``: stretched, or letterboxed
    (black around) at the block ``placement`` gives (at ``scale`` when one is fixed)."""
    place = placement(crop.shape, size, fit, scale)
    if (place.rows, place.cols) == tuple(int(s) for s in size):
        return resize_image(crop, size)
    out = np.zeros(tuple(int(s) for s in size), dtype=np.float32)
    out[place.top : place.top + place.rows, place.left : place.left + place.cols] = resize_image(crop, (place.rows, place.cols))
    return out


def fixed_scale(settings: PreprocessSettings, spacing: tuple[float, float] | None) -> float | None:
    """Model pixels per native pixel for ``settings.pixel_mm``; None without it or without a
    usable pixel spacing (the crop then fills the input, as ``fit`` says)."""
    if settings.pixel_mm is None or not spacing or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        return None
    return float(np.mean(spacing)) / float(settings.pixel_mm)


def compute_geometry(
    pixels: np.ndarray, settings: PreprocessSettings, region: np.ndarray | None = None, spacing: tuple[float, float] | None = None
) -> Geometry:
    """Flip and crop box of one decoded image (native pixels, float [0, 1]); with ``pixel_mm``,
    also the scale its pixel ``spacing`` (mm, row and column) gives.

    With crop ``"breast-only"`` both come from the breast region (``region``, computed when not
    given): the flip from its centre of mass, the box from its extent."""
    scale = fixed_scale(settings, spacing)
    if settings.crop == "breast-only":
        region = breast_region(pixels) if region is None else region
        flip = bool(settings.orient and breast_on_right(region))
        oriented = region[:, ::-1] if flip else region
        bbox = mask_bbox(oriented, 1, pixels.shape, settings.margin)
        return Geometry(flip=flip, bbox=bbox, shape=tuple(pixels.shape), masked=True, scale=scale)
    flip = bool(settings.orient and chest_wall_on_right(pixels))
    oriented = pixels[:, ::-1] if flip else pixels
    bbox = breast_bbox(oriented, settings.crop, settings.threshold, settings.margin)
    return Geometry(flip=flip, bbox=bbox, shape=tuple(pixels.shape), scale=scale)


def apply_geometry(pixels: np.ndarray, geometry: Geometry) -> np.ndarray:
    oriented = pixels[:, ::-1] if geometry.flip else pixels
    r0, r1, c0, c1 = geometry.bbox
    return oriented[r0:r1, c0:c1]


class PreprocessCancelled(RuntimeError):
    """The cancel event was set while one image was being preprocessed; nothing was stored."""


def stop_if_cancelled(cancel: threading.Event | None) -> None:
    """Raise :class:`PreprocessCancelled` when ``cancel`` is set (checked between the steps of one image)."""
    if cancel is not None and cancel.is_set():
        raise PreprocessCancelled("preprocessing cancelled")


def preprocess_pixels(
    pixels: np.ndarray,
    settings: PreprocessSettings,
    geometry: Geometry | None = None,
    cancel: threading.Event | None = None,
    spacing: tuple[float, float] | None = None,
) -> tuple[np.ndarray, Geometry]:
    """Orient, crop, (blank outside the breast, normalise inside it,) resize one decoded image;
    returns (float32 (rows, cols), geometry). ``spacing``: the native pixel spacing in mm, for
    ``pixel_mm``.

    ``cancel`` is checked between the steps (each takes seconds on a very large image):
    :class:`PreprocessCancelled` is raised at the first check after it is set.
    """
    needs_region = settings.crop == "breast-only" or settings.intensity == "breast-percentile"
    stop_if_cancelled(cancel)
    region = breast_region(pixels) if needs_region else None
    if geometry is None or tuple(geometry.shape) != tuple(pixels.shape):
        stop_if_cancelled(cancel)
        geometry = compute_geometry(pixels, settings, region, spacing)
    stop_if_cancelled(cancel)
    crop = apply_geometry(pixels, geometry)
    if region is not None:
        stop_if_cancelled(cancel)
        inside = apply_geometry(region, geometry)
        if settings.intensity == "breast-percentile":
            crop = normalise_in_breast(crop, inside)  # 0 outside the breast
        elif geometry.masked:
            crop = np.where(inside, crop, np.float32(0.0))
    stop_if_cancelled(cancel)
    return fit_image(crop, settings.size, settings.fit, geometry.scale), geometry


def preprocess_file(path: str | os.PathLike, settings: PreprocessSettings, frame: int | None = None) -> np.ndarray:
    """Decode and preprocess one file (``frame`` of a multi-frame one) without any cache; float32 (rows, cols)."""
    mammogram = read_mammogram_isolated(path, frame=frame)
    image, _ = preprocess_pixels(mammogram.pixels, settings, spacing=mammogram.pixel_spacing)
    return image


def to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    return np.broadcast_to(image, (channels, *image.shape)) if channels > 1 else image[None]
