"""Linked pan and zoom by physical position (Qt-free): one shared viewport in mm, every view's
range derived from it.

Views linked by passing each change on (view A's range moved, so B's follows A's new range,
and B's aspect lock widens one axis, which goes back to A ...) drift apart after many steps:
each hand-over rounds, and an axis widened for one view's shape comes back to the other.
Here linked views share one :class:`Viewport` (a centre in mm and a scale in mm per screen
pixel): the view the user moved defines it, and every other view's range is computed from it
afresh by :func:`view_range`, so after any number of steps all views show the same physical
centre at the same mm per screen pixel, to the rounding of one computation.

A view's units per mm: (1, 1) for a view drawn in mm (the viewer, when the pixel spacing is
known), (1 / column spacing, 1 / row spacing) for a view drawn in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

Range = tuple[float, float]


@dataclass(frozen=True)
class Viewport:
    """What linked views share: the physical point at the centre of each view and the zoom."""

    centre: tuple[float, float]  # (x, y) in mm from the image's top-left corner
    mm_per_px: float  # mm per screen pixel (screen pixels are square: the same along x and y)


def viewport_of(x_range: Range, y_range: Range, screen: tuple[float, float], units_per_mm: tuple[float, float] = (1.0, 1.0)) -> Viewport:
    """The viewport a view shows: its range (view units) on a ``screen`` of (width, height) pixels."""
    ux, uy = units_per_mm
    centre = ((x_range[0] + x_range[1]) / 2 / ux, (y_range[0] + y_range[1]) / 2 / uy)
    width_mm, height_mm = (x_range[1] - x_range[0]) / ux, (y_range[1] - y_range[0]) / uy
    # the wider of the two: with an aspect lock they agree; otherwise the whole range stays in view
    return Viewport(centre, max(width_mm / max(screen[0], 1e-9), height_mm / max(screen[1], 1e-9)))


def view_range(viewport: Viewport, screen: tuple[float, float], units_per_mm: tuple[float, float] = (1.0, 1.0)) -> tuple[Range, Range]:
    """(x range, y range) in the view's units that shows ``viewport`` on a ``screen`` of (width, height) px."""
    ux, uy = units_per_mm
    half_w, half_h = screen[0] * viewport.mm_per_px / 2, screen[1] * viewport.mm_per_px / 2
    cx, cy = viewport.centre
    return ((cx - half_w) * ux, (cx + half_w) * ux), ((cy - half_h) * uy, (cy + half_h) * uy)


def zoom_about(viewport: Viewport, factor: float, point: tuple[float, float]) -> Viewport:
    """Zoomed by ``factor`` (> 1: out) keeping the physical ``point`` (mm) where it is on screen."""
    cx, cy = viewport.centre
    px, py = point
    return Viewport((px + (cx - px) * factor, py + (cy - py) * factor), viewport.mm_per_px * factor)


def pan(viewport: Viewport, dx_px: float, dy_px: float) -> Viewport:
    """Dragged by (dx, dy) screen pixels: the picture follows the mouse."""
    cx, cy = viewport.centre
    return Viewport((cx - dx_px * viewport.mm_per_px, cy - dy_px * viewport.mm_per_px), viewport.mm_per_px)
