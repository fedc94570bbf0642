"""The two coordinate spaces and the map between them.

*Native space* is the DICOM pixel grid as stored (rows, columns of the file).
*Model space* is the preprocessed input: oriented (flipped so the chest wall is on
the left), cropped to ``bbox`` and resized to ``size`` — stretched, or letterboxed
with the aspect ratio kept (``fit = "pad"``).

``Geometry`` records the first two steps per image (it does not depend on the
output size, so the cache keeps it apart); the third is given by the settings.
Every map computed on the model input (saliency, δ) is brought back with
``model_to_native`` so that it is shown, exported and measured on the anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FITS = ("stretch", "pad")


@dataclass(frozen=True)
class Geometry:
    """Preprocessing of one image: ``flip`` (left-right, applied first), then
    ``bbox`` = (row0, row1, col0, col1) in the *flipped* image, ``shape`` = native (rows, columns)."""

    flip: bool
    bbox: tuple[int, int, int, int]
    shape: tuple[int, int]
    masked: bool = False  # everything not connected to the breast blanked (crop "breast-only"); nothing moves
    # model pixels per native pixel when the input has a fixed pixel size (``pixel_mm``); None: the
    # crop is scaled to fill the input (``fit``)
    scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bbox", tuple(int(v) for v in self.bbox))
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))

    def to_dict(self) -> dict:
        d: dict = {"flip": self.flip, "bbox": list(self.bbox), "shape": list(self.shape)}
        if self.masked:
            d["masked"] = True
        if self.scale is not None:
            d["scale"] = self.scale
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Geometry":
        scale = d.get("scale")
        return cls(
            flip=bool(d["flip"]),
            bbox=tuple(d["bbox"]),
            shape=tuple(d["shape"]),
            masked=bool(d.get("masked", False)),
            scale=None if scale is None else float(scale),
        )

    @property
    def crop_shape(self) -> tuple[int, int]:
        r0, r1, c0, c1 = self.bbox
        return r1 - r0, c1 - c0

    def native_box(self) -> tuple[int, int, int, int]:
        """The crop box in native coordinates (row0, row1, col0, col1), flip undone."""
        r0, r1, c0, c1 = self.bbox
        if self.flip:
            cols = self.shape[1]
            c0, c1 = cols - c1, cols - c0
        return r0, r1, c0, c1


@dataclass(frozen=True)
class Placement:
    """Where the crop lands in the model input: an (rows, cols) block at (top, left)."""

    top: int
    left: int
    rows: int
    cols: int


def placement(crop_shape: tuple[int, int], size: tuple[int, int], fit: str = "stretch", scale: float | None = None) -> Placement:
    """How a crop of ``crop_shape`` fills a model input of ``size`` under ``fit``.

    ``stretch`` fills the whole input (aspect ratio not kept, the paper's choice);
    ``pad`` scales by one factor so the crop fits, and centres it (letterbox). A ``scale``
    (model pixels per crop pixel: a fixed pixel size, ``Geometry.scale``) is used as it is,
    centred, unless the crop would not fit: then it shrinks to fit as ``pad`` does.
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    out_r, out_c = int(size[0]), int(size[1])
    if fit == "stretch" and scale is None:
        return Placement(0, 0, out_r, out_c)
    in_r, in_c = max(1, int(crop_shape[0])), max(1, int(crop_shape[1]))
    fits = min(out_r / in_r, out_c / in_c)
    scale = fits if scale is None else min(float(scale), fits)
    rows = min(out_r, max(1, int(round(in_r * scale))))
    cols = min(out_c, max(1, int(round(in_c * scale))))
    return Placement((out_r - rows) // 2, (out_c - cols) // 2, rows, cols)


def model_to_native(model_map: np.ndarray, geometry: Geometry, fit: str = "stretch", fill: float = 0.0) -> np.ndarray:
    """A map on the model input (rows, cols) resampled onto the native pixel grid.

    Bilinear at native pixel centres; native pixels outside the crop box (and any
    padding) get ``fill``. The result has ``geometry.shape`` and native orientation.
    """
    from scipy import ndimage

    model_map = np.asarray(model_map, dtype=np.float32)
    if model_map.ndim != 2:
        raise ValueError(f"model_map must be 2-D, not shape {model_map.shape}")
    place = placement(geometry.crop_shape, model_map.shape, fit, geometry.scale)
    inner = model_map[place.top : place.top + place.rows, place.left : place.left + place.cols]
    r0, r1, c0, c1 = geometry.bbox
    crop_r, crop_c = r1 - r0, c1 - c0
    # sample the inner block at the centres of the crop's pixels (align corners = False)
    rr = (np.arange(crop_r, dtype=np.float32) + 0.5) * (place.rows / crop_r) - 0.5
    cc = (np.arange(crop_c, dtype=np.float32) + 0.5) * (place.cols / crop_c) - 0.5
    coords = np.meshgrid(np.clip(rr, 0, place.rows - 1), np.clip(cc, 0, place.cols - 1), indexing="ij")
    crop = ndimage.map_coordinates(inner, coords, order=1, mode="nearest")
    native = np.full(geometry.shape, fill, dtype=np.float32)
    native[r0:r1, c0:c1] = crop
    return native[:, ::-1].copy() if geometry.flip else native


def native_to_model_point(
    row: float, col: float, geometry: Geometry, size: tuple[int, int], fit: str = "stretch"
) -> tuple[float, float] | None:
    """Native (row, col) -> model (row, col), or None when it falls outside the crop."""
    if geometry.flip:
        col = geometry.shape[1] - col
    r0, r1, c0, c1 = geometry.bbox
    if not (r0 <= row < r1 and c0 <= col < c1):
        return None
    place = placement(geometry.crop_shape, size, fit, geometry.scale)
    return (place.top + (row - r0) * place.rows / (r1 - r0), place.left + (col - c0) * place.cols / (c1 - c0))


def model_to_native_point(
    row: float, col: float, geometry: Geometry, size: tuple[int, int], fit: str = "stretch"
) -> tuple[float, float] | None:
    """Model (row, col) -> native (row, col), or None when it falls in the padding."""
    place = placement(geometry.crop_shape, size, fit, geometry.scale)
    r, c = row - place.top, col - place.left
    if not (0 <= r <= place.rows and 0 <= c <= place.cols):
        return None
    r0, r1, c0, c1 = geometry.bbox
    native_r = r0 + r * (r1 - r0) / place.rows
    native_c = c0 + c * (c1 - c0) / place.cols
    if geometry.flip:
        native_c = geometry.shape[1] - native_c
    return native_r, native_c
