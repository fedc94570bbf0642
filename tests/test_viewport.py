"""Linked pan/zoom by physical position: two views with different pixel spacings and screens,
driven from one shared viewport, agree after many steps (issue 25 item 10)."""

from __future__ import annotations

import numpy as np
import pytest

from arfl_studio.evaluation.viewport import Viewport, pan, view_range, viewport_of, zoom_about


def _physical(x_range, y_range, screen, units_per_mm):
    v = viewport_of(x_range, y_range, screen, units_per_mm)
    return np.array(v.centre), v.mm_per_px


def test_views_in_pixels_with_different_spacings_agree_after_fifty_random_steps():
    rng = np.random.default_rng(7)
    # view A in pixels of 0.07 mm, view B in pixels of 0.1 x 0.12 mm; different screens
    views = {"A": ((1 / 0.07, 1 / 0.07), (640.0, 480.0)), "B": ((1 / 0.1, 1 / 0.12), (333.0, 517.0))}
    shared = Viewport((120.0, 150.0), 0.2)
    ranges = {k: view_range(shared, screen, units) for k, (units, screen) in views.items()}
    for _ in range(50):
        name = str(rng.choice(["A", "B"]))
        units, screen = views[name]
        # the user's step, on that view's own range (its units): zoom about a point or pan
        moved = viewport_of(*ranges[name], screen, units)
        if rng.random() < 0.5:
            point = (moved.centre[0] + rng.normal(0, 20), moved.centre[1] + rng.normal(0, 20))
            moved = zoom_about(moved, float(np.exp(rng.normal(0, 0.3))), point)
        else:
            moved = pan(moved, float(rng.normal(0, 80)), float(rng.normal(0, 80)))
        ranges[name] = view_range(moved, screen, units)
        shared = viewport_of(*ranges[name], screen, units)  # the moved view defines the shared viewport
        for other in views:
            if other != name:
                ranges[other] = view_range(shared, views[other][1], views[other][0])
        (ca, sa), (cb, sb) = (_physical(*ranges[k], views[k][1], views[k][0]) for k in ("A", "B"))
        assert np.allclose(ca, cb, rtol=1e-6, atol=0) and sa == pytest.approx(sb, rel=1e-6)
    # the picture did move: the test exercised zoom and pan
    assert shared.mm_per_px != 0.2 and shared.centre != (120.0, 150.0)


def test_zoom_keeps_the_point_under_the_mouse_and_pan_follows_it():
    v = Viewport((50.0, 60.0), 0.1)
    zoomed = zoom_about(v, 0.5, (70.0, 40.0))
    assert zoomed.mm_per_px == pytest.approx(0.05)
    # the point sat 200 px right of the centre, 200 px above: it still does
    assert ((70.0 - zoomed.centre[0]) / zoomed.mm_per_px, (40.0 - zoomed.centre[1]) / zoomed.mm_per_px) == pytest.approx((200.0, -200.0))
    moved = pan(v, 10.0, -20.0)  # dragged right and up: the picture follows, the centre goes the other way
    assert moved.centre == pytest.approx((49.0, 62.0))


def test_range_round_trip():
    v = Viewport((12.5, -3.0), 0.037)
    for units, screen in (((1.0, 1.0), (800.0, 600.0)), ((14.2, 9.1), (123.0, 987.0))):
        back = viewport_of(*view_range(v, screen, units), screen, units)
        assert back.centre == pytest.approx(v.centre, rel=1e-12) and back.mm_per_px == pytest.approx(v.mm_per_px, rel=1e-12)
