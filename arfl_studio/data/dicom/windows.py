"""Window/level in the image's own units (after the modality LUT), as OHIF and Weasis show it.

The reader turns stored values into display values through the modality LUT and the header's
first window (``lut.display_pixels``); when that VOI step is a straight line, its
:class:`~arfl_studio.data.dicom.lut.DisplayScale` maps display values back to modality values
exactly. Here, Qt-free: every WindowCenter/WindowWidth pair of the header with its
WindowCenterWidthExplanation, the presets they give as display levels, the window/level text of
a readout (the DICOM window centre and width, in modality units) and the conversion of levels
between two images' scales (linked window/level follows the modality values).

Levels are (low, high) display values, as the viewer's image items take them; a window is
(centre, width) in modality units with the header's VOI LUT Function (LINEAR, LINEAR_EXACT).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arfl_studio.data.dicom.lut import DisplayScale, window_line

Levels = tuple[float, float]


@dataclass(frozen=True)
class HeaderWindow:
    name: str  # the WindowCenterWidthExplanation, else "Window k"
    centre: float
    width: float


def _values(value: Any) -> list:
    if value is None:
        return []
    return list(value) if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)) else [value]


def voi_function(ds: Any) -> str:
    return str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()


def header_windows(ds: Any) -> list[HeaderWindow]:
    """Every usable WindowCenter/WindowWidth pair of the header, in order, named by its explanation."""
    try:
        centres = [float(v) for v in _values(ds.get("WindowCenter"))]
        widths = [float(v) for v in _values(ds.get("WindowWidth"))]
    except (TypeError, ValueError):
        return []
    names = [str(v).strip() for v in _values(ds.get("WindowCenterWidthExplanation"))]
    function = voi_function(ds)
    out = []
    for i, (centre, width) in enumerate(zip(centres, widths)):
        if window_line(centre, width, function) is not None:
            out.append(HeaderWindow(names[i] if i < len(names) and names[i] else f"Window {i + 1}", centre, width))
    return out


def window_levels(centre: float, width: float, function: str = "LINEAR") -> Levels:
    """The (low, high) modality values a window maps to black and white."""
    line = window_line(centre, width, function)
    if line is None:
        raise ValueError(f"window width {width:g} is not a {function} window")
    return line[0], line[0] + line[1]


def levels_window(levels: Levels, function: str = "LINEAR") -> tuple[float, float]:
    """(centre, width) of the window whose black and white are ``levels`` (modality): the inverse
    of :func:`window_levels` (LINEAR counts the width in whole values: ``width - 1`` spans them)."""
    low, high = sorted(levels)
    if function == "LINEAR_EXACT":
        return low + (high - low) / 2, high - low
    return low + 0.5 + (high - low) / 2, high - low + 1


def to_display(levels: Levels, scale: DisplayScale) -> Levels:
    low, high = sorted((float(scale.to_display(levels[0])), float(scale.to_display(levels[1]))))
    return low, high


def to_modality(levels: Levels, scale: DisplayScale) -> Levels:
    low, high = sorted((float(scale.to_modality(levels[0])), float(scale.to_modality(levels[1]))))
    return low, high


def transfer_levels(levels: Levels, source: DisplayScale | None, target: DisplayScale | None) -> Levels:
    """``levels`` of an image with scale ``source`` as the levels that show the same modality values
    on an image with scale ``target``; display levels unchanged where either has no scale."""
    if source is None or target is None:
        return levels
    return to_display(to_modality(levels, source), target)


def window_presets(ds: Any, scale: DisplayScale | None) -> dict[str, Levels]:
    """``{name: display levels}``: the header's windows, every pair, first the one the reader applied
    (exactly (0, 1)). Without a straight-line scale (a VOI LUT table, a SIGMOID window) only the
    header's own display; without any window, the image's min-max (the reader's default)."""
    if scale is None:
        what = "VOI LUT" if "VOILUTSequence" in ds else "window (sigmoid)" if voi_function(ds) == "SIGMOID" else "window"
        return {f"Header {what}": (0.0, 1.0)}
    windows = header_windows(ds)
    if not windows:
        return {"Image min–max": (0.0, 1.0)}
    function = voi_function(ds)
    presets: dict[str, Levels] = {}
    for window in windows:
        name = f"{window.name}: C {window.centre:g} W {window.width:g}"
        low, high = window_levels(window.centre, window.width, function)
        applied = abs(low - scale.low) <= 1e-9 * max(1.0, abs(low)) and abs(high - low - scale.span) <= 1e-9 * max(1.0, scale.span)
        presets.setdefault(name, (0.0, 1.0) if applied else to_display((low, high), scale))
    return presets


def window_text(levels: Levels, scale: DisplayScale | None) -> str:
    """The readout: "W 4096  L 2048" (window width and centre in modality units), or the display
    levels' width and centre ("W 1.000  L 0.500") when the image has no modality scale."""
    if scale is None:
        low, high = levels
        return f"W {high - low:.3f}  L {(high + low) / 2:.3f}"
    centre, width = levels_window(to_modality(levels, scale), scale.function)
    return f"W {width:.6g}  L {centre:.6g}"
