"""One lesion record for every dataset, the optional ``lesions.csv``, and lesion masks.

A :class:`Lesion` holds one abnormality in *native* pixel coordinates (0-based row and
column indices of the DICOM pixel matrix as stored, row down, column right) with one
or more of: a centre (+ radius: a disc; no radius: a single point, as INbreast's
one-point calcifications), a box, an outline polygon, or a mask file. ``lesion_type``
is normalised (:data:`LESION_TYPES`); ``source_type`` keeps the dataset's own code
(MIAS ``CIRC``, VinDr ``Suspicious Calcification``, ...). ``pathology`` is
``benign``/``malignant`` where the dataset has biopsy results, ``birads`` the
category where it has one.

``lesions.csv`` beside ``labels.csv`` (the folder + labels CSV layout) has one row per
lesion: ``path, lesion_type, pathology, x, y, radius`` as in mini-MIAS (``x`` = column,
``y`` = row; empty x/y = the dataset gives no position), and optionally ``xmin, ymin,
xmax, ymax`` (a box), ``mask`` (a mask image, path relative to the table) and
``birads``. Lesions follow the image through the preprocessing geometry with
:func:`lesions_in_model_space` / :func:`model_space_mask`. No Qt.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from arfl_studio.data.datasets.labels import LayoutError, read_table, table_rel_path

if TYPE_CHECKING:
    from arfl_studio.data.preprocess.geometry import Geometry

LESION_TYPES = ("mass", "calcification", "distortion", "asymmetry", "other")
LESIONS_TABLE = "lesions.csv"

# Source codes and words -> normalised type (matched on the lower-cased code, then on words in it).
_TYPE_CODES = {
    "circ": "mass",
    "spic": "mass",
    "misc": "mass",
    "mass": "mass",
    "calc": "calcification",
    "arch": "distortion",
    "asym": "asymmetry",
    "distortion": "distortion",
    "asymmetry": "asymmetry",
}
_TYPE_WORDS = (
    ("calc", "calcification"),
    ("mass", "mass"),
    ("distortion", "distortion"),
    ("asymmetr", "asymmetry"),
    ("cluster", "calcification"),
    ("spiculat", "mass"),
)
_PATHOLOGY_WORDS = {
    "malignant": "malignant",
    "m": "malignant",
    "1": "malignant",
    "cancer": "malignant",
    "benign": "benign",
    "b": "benign",
    "0": "benign",
    "benign_without_callback": "benign",
}


def lesion_type(code: object) -> str:
    """The normalised type of a source's lesion code (``other`` when nothing matches)."""
    text = str(code or "").strip().lower()
    if text in _TYPE_CODES:
        return _TYPE_CODES[text]
    for word, kind in _TYPE_WORDS:
        if word in text:
            return kind
    return "other"


def pathology(value: object) -> str | None:
    """``malignant``/``benign`` from a source's pathology value; None when unknown or blank."""
    return _PATHOLOGY_WORDS.get(str(value or "").strip().lower())


@dataclass(frozen=True)
class Lesion:
    """One abnormality in native pixel coordinates; see the module docstring."""

    lesion_type: str
    source_type: str = ""
    pathology: str | None = None
    birads: str | None = None
    centre: tuple[float, float] | None = None  # (row, col)
    radius: float | None = None  # pixels; None with a centre: a single point
    box: tuple[float, float, float, float] | None = None  # (row0, row1, col0, col1), inclusive
    polygon: tuple[tuple[float, float], ...] | None = None  # ((row, col), ...)
    mask: str | None = None  # mask image, relative to the dataset root

    @property
    def has_position(self) -> bool:
        return any(v is not None for v in (self.centre, self.box, self.polygon, self.mask))

    @property
    def shape_kind(self) -> str | None:
        """How the lesion is drawn and measured: mask, polygon, box, circle, point or None."""
        if self.mask is not None:
            return "mask"
        if self.polygon is not None and len(self.polygon) >= 3:
            return "polygon"
        if self.box is not None:
            return "box"
        if self.centre is not None:
            return "circle" if self.radius else "point"
        if self.polygon:
            return "point"
        return None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"lesion_type": self.lesion_type, "source_type": self.source_type}
        for name in ("pathology", "birads", "radius", "mask"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        if self.centre is not None:
            doc["centre"] = [float(v) for v in self.centre]
        if self.box is not None:
            doc["box"] = [float(v) for v in self.box]
        if self.polygon is not None:
            doc["polygon"] = [[float(r), float(c)] for r, c in self.polygon]
        return doc

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Lesion":
        return cls(
            lesion_type=str(d.get("lesion_type") or "other"),
            source_type=str(d.get("source_type") or ""),
            pathology=d.get("pathology"),
            birads=d.get("birads"),
            centre=tuple(d["centre"]) if d.get("centre") is not None else None,
            radius=float(d["radius"]) if d.get("radius") is not None else None,
            box=tuple(d["box"]) if d.get("box") is not None else None,
            polygon=tuple(tuple(p) for p in d["polygon"]) if d.get("polygon") is not None else None,
            mask=d.get("mask"),
        )


def count_lesions(records: Iterable[object]) -> dict[str, Any]:
    """{lesions, images_with_lesions, positioned, by_type, by_pathology} over scan records."""
    lesions = [les for r in records for les in getattr(r, "lesions", ())]
    by_type: dict[str, int] = {}
    by_path: dict[str, int] = {}
    for les in lesions:
        by_type[les.lesion_type] = by_type.get(les.lesion_type, 0) + 1
        key = les.pathology or (f"BI-RADS {les.birads}" if les.birads else "unknown")
        by_path[key] = by_path.get(key, 0) + 1
    return {
        "lesions": len(lesions),
        "images_with_lesions": sum(1 for r in records if getattr(r, "lesions", ())),
        "positioned": sum(1 for les in lesions if les.has_position),
        "by_type": dict(sorted(by_type.items())),
        "by_pathology": dict(sorted(by_path.items())),
    }


# ---------------------------------------------------------------- lesions.csv


def _number(row: dict[str, Any], name: str) -> float | None:
    text = str(row.get(name) or "").strip()
    if not text:
        return None
    value = float(text)  # ValueError names the text; caught per row
    if not math.isfinite(value):
        raise ValueError(f"{name} is {text}")
    return value


def _row_lesion(row: dict[str, Any], table: Path, root: Path) -> Lesion:
    code = str(row.get("lesion_type") or "").strip()
    x, y, radius = _number(row, "x"), _number(row, "y"), _number(row, "radius")
    if (x is None) != (y is None):
        raise ValueError("x and y must both be given or both be empty")
    corners = [_number(row, n) for n in ("xmin", "ymin", "xmax", "ymax")]
    if any(v is not None for v in corners) and not all(v is not None for v in corners):
        raise ValueError("a box needs all of xmin, ymin, xmax, ymax")
    box = None
    xmin, ymin, xmax, ymax = corners
    if xmin is not None and ymin is not None and xmax is not None and ymax is not None:
        box = (min(ymin, ymax), max(ymin, ymax), min(xmin, xmax), max(xmin, xmax))
    if radius is not None and radius < 0:
        raise ValueError(f"radius {radius:g} is negative")
    mask = str(row.get("mask") or "").strip() or None
    if mask is not None:
        mask = table_rel_path(mask, table, root)
    birads = str(row.get("birads") or "").strip() or None
    return Lesion(
        lesion_type=lesion_type(code),
        source_type=code,
        pathology=pathology(row.get("pathology")),
        birads=birads,
        centre=(y, x) if x is not None and y is not None else None,
        radius=radius if x is not None else None,
        box=box,
        mask=mask,
    )


def read_lesion_table(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> tuple[dict[str, list[Lesion]], list[str]]:
    """rel_path -> lesions from a ``lesions.csv``, and one line per row that could not be read.

    Paths resolve as in the labels table (relative to the table's folder, or the dataset root).
    """
    path, root = Path(path), Path(root)
    rows = read_table(path)
    if rows and "path" not in rows[0]:
        raise LayoutError(f"{path.name} needs a 'path' column (found {', '.join(sorted(rows[0]))})")
    found: dict[str, list[Lesion]] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=2):
        raw = str(row.get("path") or "").strip()
        if not raw:
            problems.append(f"{path.name} row {number}: no path")
            continue
        try:
            lesion = _row_lesion(row, path, root)
        except ValueError as err:
            problems.append(f"{path.name} row {number}: {err}")
            continue
        found.setdefault(table_rel_path(raw, path, root), []).append(lesion)
    return found, problems


# ---------------------------------------------------------------- masks


def read_mask_file(path: str | os.PathLike[str]) -> np.ndarray:
    """A lesion mask image (DICOM, PNG/TIFF or .npy) as a bool array: the bright class of a
    binary image (0/255, 0/1 or a 12-bit window's two levels alike)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        values = np.load(path)
    elif suffix in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"):
        from matplotlib import image as mpimg

        values = mpimg.imread(path)
        values = values[..., :3].max(axis=-1) if values.ndim == 3 else values
    else:
        import pydicom

        values = pydicom.dcmread(path).pixel_array
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min(initial=0)), float(values.max(initial=0))
    return values > (lo + hi) / 2 if hi > lo else np.zeros(values.shape, dtype=bool)


def _polygon_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from matplotlib.path import Path as MplPath

    out = np.zeros(shape, dtype=bool)
    r0, c0 = np.floor(points.min(axis=0)).astype(int)
    r1, c1 = np.ceil(points.max(axis=0)).astype(int)
    r0, c0, r1, c1 = max(r0, 0), max(c0, 0), min(r1, shape[0] - 1), min(c1, shape[1] - 1)
    if r1 < r0 or c1 < c0:
        return out
    rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
    inside = MplPath(points[:, ::-1]).contains_points(np.column_stack([cc.ravel(), rr.ravel()]), radius=1e-9)
    out[r0 : r1 + 1, c0 : c1 + 1] = inside.reshape(rr.shape)
    for r, c in np.round(points).astype(int):  # the outline itself counts (thin or tiny outlines)
        if 0 <= r < shape[0] and 0 <= c < shape[1]:
            out[r, c] = True
    return out


def _one_mask(lesion: Lesion, shape: tuple[int, int], root: Path | None) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    kind = lesion.shape_kind
    if kind == "mask" and lesion.mask is not None:
        mask = read_mask_file(Path(root or ".") / lesion.mask)
        if mask.shape != tuple(shape):
            raise ValueError(f"mask {lesion.mask} is {mask.shape[0]}x{mask.shape[1]}, the image {shape[0]}x{shape[1]}")
        return mask
    if kind == "polygon":
        return _polygon_mask(np.asarray(lesion.polygon, dtype=np.float64), shape)
    if kind == "box" and lesion.box is not None:
        r0, r1, c0, c1 = lesion.box
        out[max(0, math.ceil(r0)) : max(0, math.floor(r1) + 1), max(0, math.ceil(c0)) : max(0, math.floor(c1) + 1)] = True
        return out
    point = lesion.centre if lesion.centre is not None else (lesion.polygon[0] if lesion.polygon else None)
    if kind in ("circle", "point") and point is not None:
        r, c = point
        radius = float(lesion.radius or 0.0)
        reach = int(math.ceil(radius)) + 1
        r0, r1 = max(0, int(r) - reach), min(shape[0], int(r) + reach + 1)
        c0, c1 = max(0, int(c) - reach), min(shape[1], int(c) + reach + 1)
        if r1 > r0 and c1 > c0:
            rr, cc = np.mgrid[r0:r1, c0:c1]
            out[r0:r1, c0:c1] = (rr - r) ** 2 + (cc - c) ** 2 <= max(radius, 0.5) ** 2
        return out
    return out


def lesion_mask(lesions: Sequence[Lesion], shape: tuple[int, int], root: str | os.PathLike[str] | None = None) -> np.ndarray:
    """The union of the lesions' areas on a native pixel grid of ``shape`` (bool).

    Lesions without a position add nothing; a point lesion marks its pixel (measure it
    with a tolerance). ``root`` is the dataset folder that mask paths are relative to.
    """
    shape = (int(shape[0]), int(shape[1]))
    out = np.zeros(shape, dtype=bool)
    for lesion in lesions:
        out |= _one_mask(lesion, shape, Path(root) if root is not None else None)
    return out


# ---------------------------------------------------------------- model space


def _to_model(points: np.ndarray, geometry: Geometry, size: tuple[int, int], fit: str) -> np.ndarray:
    """Native pixel indices (N, 2) -> model pixel indices, as the image is flipped, cropped and resized."""
    from arfl_studio.data.preprocess.geometry import placement

    place = placement(geometry.crop_shape, size, fit, geometry.scale)
    r0, r1, c0, c1 = geometry.bbox
    rows = points[:, 0] + 0.5  # pixel centres as continuous coordinates
    cols = points[:, 1] + 0.5
    if geometry.flip:
        cols = geometry.shape[1] - cols
    model_r = place.top + (rows - r0) * place.rows / (r1 - r0) - 0.5
    model_c = place.left + (cols - c0) * place.cols / (c1 - c0) - 0.5
    return np.column_stack([model_r, model_c])


def _circle(centre: tuple[float, float], radius: float, corners: int = 48) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, corners, endpoint=False)
    return np.column_stack([centre[0] + radius * np.sin(angles), centre[1] + radius * np.cos(angles)])


def lesions_in_model_space(lesions: Sequence[Lesion], geometry: Geometry, size: tuple[int, int], fit: str = "stretch") -> list[Lesion]:
    """The lesions on the model input of ``size`` (through flip, crop box and resize).

    Circles become outline polygons (a stretch makes them ellipses); boxes stay boxes;
    points stay points; mask lesions keep their path (use :func:`model_space_mask`).
    Positions outside the crop are kept (they fall outside the input).
    """
    size = (int(size[0]), int(size[1]))
    moved = []
    for les in lesions:
        kind = les.shape_kind
        polygon = box = centre = None
        if les.centre is not None:
            centre = tuple(_to_model(np.array([les.centre], dtype=np.float64), geometry, size, fit)[0])
        if kind == "circle" and les.centre is not None and les.radius:
            polygon = tuple(map(tuple, _to_model(_circle(les.centre, les.radius), geometry, size, fit)))
        elif les.polygon is not None:
            polygon = tuple(map(tuple, _to_model(np.asarray(les.polygon, dtype=np.float64), geometry, size, fit)))
        if les.box is not None:
            r0, r1, c0, c1 = les.box
            (a, b), (c, d) = _to_model(np.array([[r0, c0], [r1, c1]]), geometry, size, fit)
            box = (min(a, c), max(a, c), min(b, d), max(b, d))
        moved.append(
            Lesion(
                les.lesion_type,
                les.source_type,
                les.pathology,
                les.birads,
                centre=centre,
                radius=None,
                box=box,
                polygon=polygon,
                mask=les.mask,
            )
        )
    return moved


def model_space_mask(
    lesions: Sequence[Lesion], geometry: Geometry, size: tuple[int, int], fit: str = "stretch", root: str | os.PathLike[str] | None = None
) -> np.ndarray:
    """The lesions' union on the model input: the native mask flipped, cropped and resized.

    A model pixel is lesion when any native lesion pixel falls in its footprint, so a
    calcification of a few pixels survives downsampling (the mask grows by up to a pixel)."""
    from arfl_studio.data.preprocess.geometry import placement
    from scipy import ndimage

    native = lesion_mask(lesions, geometry.shape, root)
    if geometry.flip:
        native = native[:, ::-1]
    r0, r1, c0, c1 = geometry.bbox
    place = placement(geometry.crop_shape, size, fit, geometry.scale)
    out = np.zeros(size, dtype=bool)
    crop = native[r0:r1, c0:c1]
    if crop.size == 0:
        return out
    footprint = (max(1, math.ceil(crop.shape[0] / place.rows)), max(1, math.ceil(crop.shape[1] / place.cols)))
    crop = ndimage.maximum_filter(crop.astype(np.float32), size=footprint)
    rr = (np.arange(place.rows) + 0.5) * crop.shape[0] / place.rows - 0.5
    cc = (np.arange(place.cols) + 0.5) * crop.shape[1] / place.cols - 0.5
    grid = np.meshgrid(np.clip(rr, 0, crop.shape[0] - 1), np.clip(cc, 0, crop.shape[1] - 1), indexing="ij")
    block = ndimage.map_coordinates(crop, grid, order=1, mode="nearest") >= 0.5
    out[place.top : place.top + place.rows, place.left : place.left + place.cols] = block
    return out


# ---------------------------------------------------------------- outlines (what a viewer draws)


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """The outlines of a bool mask as closed (N, 2) (row, col) polygons (contourpy, at 0.5)."""
    import contourpy

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    padded = np.pad(mask.astype(np.float64), 1)  # a lesion at the border still closes
    lines = contourpy.contour_generator(z=padded).lines(0.5)
    return [np.asarray(line, dtype=np.float64)[:, ::-1] - 1.0 for line in lines if len(line) >= 3]


def lesion_outlines(
    lesions: Sequence[Lesion],
    shape: tuple[int, int],
    root: str | os.PathLike[str] | None = None,
    masks: Sequence[np.ndarray | None] | None = None,
) -> list[dict[str, Any]]:
    """What to draw for each positioned lesion on a pixel grid of ``shape``: [{"kind": "outline" |
    "point", "points": [(row, col), ...], "pathology", "label"}] (boxes and circles as outlines).

    ``masks`` (one per lesion, or None) replaces a lesion's mask file (e.g. its model-space
    mask); a mask that cannot be read is drawn as nothing and named in ``label``."""
    out: list[dict[str, Any]] = []
    for i, les in enumerate(lesions):
        kind = les.shape_kind
        label = les.lesion_type + (f" ({les.pathology})" if les.pathology else f" (BI-RADS {les.birads})" if les.birads else "")
        lines: list[np.ndarray] = []
        if kind == "mask":
            given = masks[i] if masks is not None else None
            try:
                mask = (
                    given if given is not None else _one_mask(les, (int(shape[0]), int(shape[1])), Path(root) if root is not None else None)
                )
            except (OSError, ValueError) as err:
                out.append({"kind": "none", "points": [], "pathology": les.pathology, "label": f"{label}: {err}"})
                continue
            lines = mask_outlines(mask)
        elif kind == "polygon" and les.polygon is not None:
            lines = [np.asarray(les.polygon, dtype=np.float64)]
        elif kind == "box" and les.box is not None:
            r0, r1, c0, c1 = les.box
            lines = [np.array([(r0, c0), (r0, c1), (r1, c1), (r1, c0)], dtype=np.float64)]
        elif kind == "circle" and les.centre is not None and les.radius:
            lines = [_circle(les.centre, les.radius)]
        elif kind == "point":
            point = les.centre if les.centre is not None else (les.polygon[0] if les.polygon else None)
            if point is not None:
                out.append({"kind": "point", "points": [tuple(map(float, point))], "pathology": les.pathology, "label": label})
            continue
        for line in lines:
            out.append({"kind": "outline", "points": [tuple(map(float, p)) for p in line], "pathology": les.pathology, "label": label})
    return out
