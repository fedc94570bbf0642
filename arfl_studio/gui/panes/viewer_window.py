"""The Viewer's window/level controls: presets (every window pair of the header, by its
explanation, and the full range), the centre and width fields in the image's own units after the
modality LUT (``data.dicom.windows``), and W/L linked between views by modality value.

The fields follow the view whose window the user changed last (else the first view with an
image); editing them sets that view's window, and linked views follow.
"""

from __future__ import annotations

import math
from typing import Any

from arfl_studio.data.dicom.windows import levels_window, to_display, to_modality, transfer_levels, window_levels


def active_view(pane: Any):
    """The view the window fields show and edit."""
    views = [v for v in pane.current_views() if v.gray is not None]
    chosen = getattr(pane, "wl_view", None)
    return chosen if chosen in views else (views[0] if views else None)


def show_window(pane: Any) -> None:
    """Put the active view's window (modality units, else display units) into the fields."""
    view = active_view(pane)
    for box in (pane.centre_spin, pane.width_spin):
        box.setEnabled(view is not None)
    pane.labels[pane.preset_box].setEnabled(view is not None)
    if view is None:
        return
    if view.scale is not None:
        centre, width = levels_window(to_modality(view.levels, view.scale), view.scale.function)
        decimals = max(0, min(4, 3 - math.floor(math.log10(max(view.scale.span, 1e-9)))))
    else:
        centre, width, decimals = sum(view.levels) / 2, view.levels[1] - view.levels[0], 3
    for box, value in ((pane.centre_spin, centre), (pane.width_spin, width)):
        box.blockSignals(True)
        box.setDecimals(decimals)
        box.setValue(value)
        box.blockSignals(False)


def edit_window(pane: Any) -> None:
    """The fields' centre and width as the active view's window (linked views follow)."""
    view = active_view(pane)
    if view is None:
        return
    centre, width = pane.centre_spin.value(), pane.width_spin.value()
    if view.scale is not None:
        function = view.scale.function
        width = max(width, 1e-6 if function == "LINEAR_EXACT" else 1.0)
        view.set_levels(*to_display(window_levels(centre, width, function), view.scale), user=True)
    else:
        width = max(width, 1e-4)
        view.set_levels(centre - width / 2, centre + width / 2, user=True)


def fill_presets(pane: Any) -> None:
    view = next((v for v in pane.current_views() if v.gray is not None), None)
    names = list(view.presets) if view is not None else []
    pane.preset_box.clear()
    pane.preset_box.addItems(names)
    pane.preset_box.setEnabled(bool(names))
    show_window(pane)


def apply_preset(pane: Any, name: str) -> None:
    """Each view's own preset of that name (a header's windows are its own)."""
    for view in pane.current_views():
        view.apply_preset(name)
    show_window(pane)


def levels_changed(pane: Any, source: Any, lo: float, hi: float) -> None:
    """A user's W/L change on ``source``: the fields follow it; linked views show the same modality window."""
    if source not in pane.current_views():
        return
    pane.wl_view = source
    if pane.link_wl_box.isChecked():
        for view in pane.current_views():
            if view is not source and view.gray is not None:
                view.set_levels(*transfer_levels((lo, hi), source.scale, view.scale))
    show_window(pane)
