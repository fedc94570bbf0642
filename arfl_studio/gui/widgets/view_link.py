"""Views that pan and zoom together by physical position (``evaluation.viewport``).

A MammogramView is drawn in mm when its pixel spacing is known (in pixels otherwise, which then
link pixel for pixel), so its view units are the viewport's. The view the user moves (drag,
wheel, fit, resize) defines the one shared viewport; every other view's range is set from it,
never from another view's range, so linked views cannot drift.
"""

from __future__ import annotations

from typing import Any

from arfl_studio.evaluation.viewport import Viewport, view_range, viewport_of


def _screen(view: Any) -> tuple[float, float]:
    box = view.view
    return float(box.width()), float(box.height())


class ViewLink:
    """A group of MammogramViews sharing one :class:`Viewport`."""

    def __init__(self, views: list | None = None):
        self.views: list = []
        self.viewport: Viewport | None = None
        self._syncing = False
        self._slots: dict[int, Any] = {}
        self.set_views(views or [])

    def set_views(self, views: list) -> None:
        """Link exactly ``views`` (the others are released); the first one's range is the shared one."""
        for view in self.views:
            if view not in views:
                view.view.sigRangeChanged.disconnect(self._slots.pop(id(view)))
        for view in views:
            if id(view) not in self._slots:
                self._slots[id(view)] = lambda *_, v=view: self._moved(v)
                view.view.sigRangeChanged.connect(self._slots[id(view)])
        self.views = list(views)
        self.viewport = None
        if self.views:
            self._moved(self.views[0])

    def _moved(self, source: Any) -> None:
        if self._syncing or source.gray is None:
            return
        width, height = _screen(source)
        if width <= 1 or height <= 1:  # not laid out yet: its range says nothing about the screen
            return
        x_range, y_range = source.view.viewRange()
        self.viewport = viewport_of(tuple(x_range), tuple(y_range), (width, height))
        self.apply([v for v in self.views if v is not source])

    def apply(self, views: list) -> None:
        """Set each of ``views`` to the shared viewport (on its own screen size)."""
        if self.viewport is None:
            return
        self._syncing = True
        try:
            for view in views:
                width, height = _screen(view)
                if view.gray is None or width <= 1 or height <= 1:
                    continue
                x_range, y_range = view_range(self.viewport, (width, height))
                view.view.setRange(xRange=x_range, yRange=y_range, padding=0)
        finally:
            self._syncing = False
