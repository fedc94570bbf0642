"""Stored pixel values to display-ready [0, 1], tissue bright (DICOM PS3.3 C.11, PS3.4 N.2).

Modality LUT (Rescale Slope/Intercept or Modality LUT Sequence) -> VOI (VOI LUT Sequence,
else Window Centre/Width with LINEAR, LINEAR_EXACT or SIGMOID, else min-max) -> invert
MONOCHROME1 so tissue is always bright. A malformed LUT falls back to the next simpler
step (Modality LUT Sequence -> rescale; VOI LUT Sequence -> window -> min-max).

:class:`DisplayScale` records the VOI step when it is a straight line, so that a viewer can work in
modality units. Memory: the stored integers are converted to float32 once and every later step works in
place (pydicom's ``apply_windowing`` works in float64, hence our own windowing; pydicom's
functions are used for the LUT sequences).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from arfl_studio.data.datasets.reasons import MammogramReadError


def _lut_item_usable(item: Any) -> bool:
    """A LUT item with a 3-value descriptor and data (an empty item is common in the wild)."""
    try:
        return len(item.LUTDescriptor) == 3 and len(item.LUTData) > 0
    except Exception:
        return False


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def rescale_problem(slope: float, intercept: float, low: float, high: float) -> str | None:
    """Why Rescale Slope/Intercept cannot map stored values ``low..high`` to usable pixels, or None.

    A zero slope makes every pixel one value; a non-finite one, or one whose result leaves
    float32, turns the image into infinities that would be shown as a flat white (or black)
    image; a slope so small that distinct stored values become one float32 value does the same.
    """
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        return f"non-finite RescaleSlope/RescaleIntercept ({slope:g}, {intercept:g})"
    if slope == 0:
        return "RescaleSlope is 0: every pixel would have the same value"
    ends = [low * slope + intercept, high * slope + intercept]
    if not all(math.isfinite(v) and abs(v) <= _FLOAT32_MAX for v in ends):
        return (
            f"RescaleSlope {slope:g} / RescaleIntercept {intercept:g} overflow: stored values {low:g}..{high:g} "
            "map outside the range of 32-bit floats"
        )
    if high > low and np.float32(ends[0]) == np.float32(ends[1]):
        return f"RescaleSlope {slope:g} is too small: stored values {low:g}..{high:g} all map to one value"
    return None


def rescale_values(ds: Any) -> tuple[float, float]:
    """(slope, intercept) of the header; absent or empty means (1, 0). An unreadable value raises
    :class:`MammogramReadError`."""
    values = []
    for keyword, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
        raw = ds.get(keyword)
        if raw is None or raw == "":
            values.append(default)
            continue
        try:
            values.append(float(raw))
        except (TypeError, ValueError):
            raise MammogramReadError(f"invalid {keyword} {raw!r}") from None
    return values[0], values[1]


def _rescale(arr: np.ndarray, ds: Any) -> np.ndarray:
    slope, intercept = rescale_values(ds)
    if arr.size:
        problem = rescale_problem(slope, intercept, float(arr.min()), float(arr.max()))
        if problem:
            raise MammogramReadError(problem, "non_finite")
    out = arr.astype(np.float32)
    if slope != 1.0:
        out *= slope
    if intercept != 0.0:
        out += intercept
    return out


def _first(value: Any) -> float:
    try:
        return float(value[0]) if not isinstance(value, (str, bytes)) and hasattr(value, "__getitem__") else float(value)
    except TypeError:
        return float(value)


@dataclass(frozen=True)
class DisplayScale:
    """The straight line from modality values to the reader's display values, when the VOI step is
    one (a LINEAR or LINEAR_EXACT window, or min-max): ``display = (modality - low) / span``, then
    ``1 - display`` for MONOCHROME1 (tissue bright). It lets a viewer show and edit window/level in
    the image's own units (after the modality LUT), as OHIF and Weasis do."""

    low: float
    span: float
    inverted: bool = False
    function: str = "LINEAR"  # the VOI LUT Function a window (centre, width) is read with

    def to_display(self, value):
        d = (value - self.low) / self.span
        return 1 - d if self.inverted else d

    def to_modality(self, value):
        return self.low + (1 - value if self.inverted else value) * self.span


def window_line(center: float, width: float, function: str = "LINEAR") -> tuple[float, float] | None:
    """(low, span) of a linear window (PS3.3 C.11.2.1.2, C.11.2.1.3): [low, low + span] maps to [0, 1];
    None for SIGMOID (not a line) or a width the function does not allow."""
    function = (function or "LINEAR").strip().upper()
    if function == "SIGMOID":
        return None
    if function == "LINEAR_EXACT":
        return (center - width / 2.0, width) if width > 0 else None
    if width < 1:  # LINEAR (the default, and what unknown functions fall back to)
        return None
    return center - 0.5 - (width - 1) / 2.0, max(width - 1.0, 1e-6)


def apply_window(arr: np.ndarray, center: float, width: float, function: str = "LINEAR", clip: bool = True) -> np.ndarray:
    """Window centre/width to [0, 1] in place on a float32 array (PS3.3 C.11.2.1.2); ``clip=False``
    keeps a linear window's values outside [0, 1] (a viewer's wider windows need them)."""
    function = (function or "LINEAR").strip().upper()
    if function == "SIGMOID":
        if width <= 0:
            raise MammogramReadError(f"invalid window width {width} for SIGMOID")
        arr -= center
        arr *= -4.0 / width
        np.clip(arr, -80.0, 80.0, out=arr)  # exp overflow guard
        np.exp(arr, out=arr)
        arr += 1.0
        np.reciprocal(arr, out=arr)
        return arr
    line = window_line(center, width, function)
    if line is None:
        raise MammogramReadError(f"invalid window width {width} for {'LINEAR_EXACT' if function == 'LINEAR_EXACT' else 'LINEAR'}")
    low, span = line
    arr -= low
    arr *= 1.0 / span
    if clip:
        np.clip(arr, 0.0, 1.0, out=arr)
    return arr


def _min_max(arr: np.ndarray) -> tuple[np.ndarray, DisplayScale]:
    lo, hi = float(arr.min()), float(arr.max())
    if not np.isfinite(lo) or not np.isfinite(hi):
        np.nan_to_num(arr, copy=False)
        lo, hi = float(arr.min()), float(arr.max())
    arr -= lo
    if hi > lo:
        arr *= 1.0 / (hi - lo)
    return arr, DisplayScale(lo, hi - lo if hi > lo else 1.0)


def pixels_for_display(ds: Any, arr: np.ndarray) -> np.ndarray:
    """Modality LUT -> VOI -> MONOCHROME1 inversion; float32 in [0, 1], tissue bright."""
    return display_pixels(ds, arr)[0]


def display_pixels(ds: Any, arr: np.ndarray, clip: bool = True) -> tuple[np.ndarray, DisplayScale | None]:
    """:func:`pixels_for_display` and the :class:`DisplayScale` it applied (None when the VOI step
    is no straight line: a VOI LUT table or a SIGMOID window). ``clip=False`` keeps the values a
    linear window puts outside [0, 1]; clipping them afterwards gives exactly the clipped pixels."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    # Modality LUT; an empty or malformed sequence item falls back to rescale slope/intercept
    lut = None
    if "ModalityLUTSequence" in ds and ds.ModalityLUTSequence and _lut_item_usable(ds.ModalityLUTSequence[0]):
        try:
            lut = np.asarray(apply_modality_lut(arr, ds)).astype(np.float32, copy=False)
        except Exception:
            lut = None
    arr = lut if lut is not None else _rescale(arr, ds)
    # VOI
    done, scale = False, None
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        try:
            lut_item = ds.VOILUTSequence[0]
            bits = int(lut_item.LUTDescriptor[2])
            as_int = np.rint(arr).astype(np.int32) if arr.dtype.kind == "f" else arr
            out = np.asarray(apply_voi_lut(as_int, ds, index=0, prefer_lut=True))
            arr = out.astype(np.float32, copy=False)
            arr *= 1.0 / float(2**bits - 1 if bits > 0 else max(arr.max(), 1))
            np.clip(arr, 0.0, 1.0, out=arr)
            done = True
        except Exception:
            done = False  # malformed LUT: fall back to the window or min-max
    if not done and "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
            if np.isfinite(center) and np.isfinite(width) and width > 0:
                arr = apply_window(arr, center, width, function, clip=clip)
                done = True
                line = window_line(center, width, function)
                scale = DisplayScale(*line, function=function.strip().upper()) if line is not None else None
        except MammogramReadError:
            done = False
        except (TypeError, ValueError, IndexError):
            done = False
    if not done:
        arr, scale = _min_max(arr)
    # Tissue bright
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        np.subtract(1.0, arr, out=arr)
        scale = dataclasses.replace(scale, inverted=True) if scale is not None else None
    if clip:
        np.clip(arr, 0.0, 1.0, out=arr)
    return arr, scale
