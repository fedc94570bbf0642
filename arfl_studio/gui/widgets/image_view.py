"""The mammogram view: native pixels, aspect-correct in mm, window/level, one overlay.

The overlay's colour map has an alpha ramp (:func:`overlay_lut`): below a threshold it is
transparent, so a cold region leaves the anatomy readable. The base image is shown from a block-mean pyramid (the level follows the zoom), in
millimetre coordinates when the pixel spacing is known (pixels otherwise), so
non-square pixels keep their aspect and the scale bar and readout are in mm. The
overlay (saliency map or δ) is a second ``ImageItem`` over the same rectangle, with
a colour bar that states its scale. :func:`blend` produces the same picture as
pixels for export.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from arfl_studio.data.dicom.windows import window_text
from arfl_studio.evaluation.blend import blend_lut
from arfl_studio.data.preprocess.pyramid import Pyramid
from arfl_studio.gui.widgets.lesion_layer import LesionLayer
from arfl_studio.gui.widgets.scale_bar import ScaleBar
from arfl_studio.gui.widgets.window_level import WindowLevelViewBox, drag_levels

DIVERGING = ("CET-D1", "CET-D1A", "CET-D3", "CET-D4")  # for the signed perturbation
SEQUENTIAL = ("inferno", "viridis", "magma", "plasma", "CET-L17")
TILE = 1024  # display pixels per tile side
DEFAULT_THRESHOLD = 0.2  # share of the overlay's scale (of |δ| / ε for δ) shown fully transparent
RAMP = 0.25  # above the threshold the overlay fades in over this share of its scale
CORNER_STYLE = "color: white; background: rgba(0, 0, 0, 140); padding: 1px 4px; font-weight: bold;"


class FastImageItem(pg.ImageItem):
    """An ImageItem whose rendered picture is kept as 32-bit premultiplied ARGB: Qt scales that
    format directly, while an indexed (LUT) image is converted again on every paint."""

    def render(self):
        super().render()
        if self.qimage is not None and self.qimage.format() != QImage.Format.Format_ARGB32_Premultiplied:
            self.qimage = self.qimage.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def colormap_lut(name: str) -> np.ndarray:
    """(256, 3) float RGB in [0, 1]: the colormap as the view draws it (for exports)."""
    return colormap(name).getLookupTable(0.0, 1.0, 256, alpha=False).astype(np.float32) / 255


def overlay_lut(name: str, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """(256, 4) float RGBA in [0, 1]: the colour map with an alpha ramp, transparent up to
    ``threshold`` and opaque from ``threshold + RAMP``, so the anatomy under a cold region stays
    as it is. A diverging map (signed δ) ramps with the distance from its centre (δ = 0)."""
    x = np.linspace(0.0, 1.0, 256)
    strength = np.abs(2 * x - 1) if name in DIVERGING else x
    alpha = np.clip((strength - threshold) / RAMP, 0.0, 1.0)
    return np.column_stack([colormap_lut(name), alpha]).astype(np.float32)


def blend(
    gray: np.ndarray,
    heat: np.ndarray | None,
    cmap: str = "inferno",
    opacity: float = 0.5,
    levels: tuple[float, float] = (0.0, 1.0),
    gray_levels: tuple[float, float] = (0.0, 1.0),
    invert: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Base image through window/level (and invert) with the overlay blended in: uint8 RGB (H, W, 3)."""
    return blend_lut(gray, heat, overlay_lut(cmap, threshold), opacity, levels, gray_levels, invert)


class MammogramView(QWidget):
    """One image with title, corner marker, W/L numbers, scale bar, readout, overlay and colour bar."""

    levels_changed = Signal(float, float)  # by the user (drag, preset, reset): for linked views

    def __init__(self, title: str = "", colour_bar: bool = True, parent=None):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold;")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.readout = QLabel("")
        self.readout.setStyleSheet("color: #555; font-family: monospace;")
        # the readout's text must not set the view's width: else the first mouse move over the
        # image widens the pane and the image jumps (re-fits) under the cursor
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.view = WindowLevelViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.graphics.addItem(self.view, row=0, col=0)
        self.level_groups: list[pg.ItemGroup] = []  # one per pyramid level
        self.tiles: list[pg.ImageItem] = []
        self.overlay = FastImageItem(axisOrder="row-major")
        self.overlay.setZValue(10)
        self.overlay.setOpacity(0.5)
        self.view.addItem(self.overlay)
        self.lesions = LesionLayer(self.view)  # between the image and the overlay
        self.scale_bar = ScaleBar()
        self.scale_bar.setParentItem(self.view)
        self.colour_bar = None
        if colour_bar:
            self.colour_bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("inferno"), interactive=False, width=14, colorMapMenu=False)
            self.graphics.addItem(self.colour_bar, row=0, col=1)
            self.colour_bar.setVisible(False)
        self.marker = QLabel("", self.graphics)
        self.marker.setStyleSheet(CORNER_STYLE)
        self.wl_label = QLabel("", self.graphics)
        self.wl_label.setStyleSheet(CORNER_STYLE)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.title)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.caption)

        self.pyramid: Pyramid | None = None
        self._source = None  # the object last passed to set_image
        self.level = 0
        self.spacing: tuple[float, float] | None = None
        self.scale = None  # lut.DisplayScale: display value <-> modality value (None: display units only)
        self.levels = (0.0, 1.0)
        self.default_levels = (0.0, 1.0)
        self.presets: dict[str, tuple[float, float]] = {}
        self.inverted = False
        self.marker_side = "left"
        self.heat: np.ndarray | None = None
        self.heat_step = 1
        self.full_heat = None  # callable -> the overlay on the full native grid, for exports
        self.cmap = "inferno"
        self.heat_threshold = DEFAULT_THRESHOLD
        self.heat_levels = (0.0, 1.0)
        self.heat_label = ""

        self.view.window_level_dragged.connect(self._drag_levels)
        self.view.reset_requested.connect(self.reset_view)
        self.view.sigRangeChanged.connect(lambda *_: self._choose_level())
        self.view.sigResized.connect(lambda *_: (self._choose_level(), self._place_corners()))
        self.graphics.scene().sigMouseMoved.connect(self._mouse_moved)

    # base image -------------------------------------------------------
    @property
    def gray(self) -> np.ndarray | None:
        return None if self.pyramid is None else self.pyramid.base

    def set_image(
        self,
        gray,
        auto_range: bool = True,
        spacing: tuple[float, float] | None = None,
        keep_levels: bool = True,
        presets: dict | None = None,
        scale=None,
    ) -> None:
        """Show ``gray``: (rows, cols) pixels or a ready :class:`Pyramid` of them (built in a
        worker for a large image); ``spacing`` (row, col) in mm puts the view in mm; ``scale``
        (``lut.DisplayScale``) shows values and window/level in the image's modality units.

        ``keep_levels`` keeps the user's window/level (same case, another picture of it);
        otherwise the levels go back to the default (the first preset, else [0, 1]).
        Showing the same object again only re-applies levels and range (no rebuild)."""
        had_image = self.pyramid is not None
        if gray is None:
            self.pyramid, self._source = None, None
            for group in self.level_groups:
                self.view.removeItem(group)
            self.level_groups, self.tiles = [], []
            self.readout.setText("")
            self.wl_label.setText("")  # an empty view keeps no label of the image it showed
            self.lesions.clear()
            return
        spacing = tuple(float(s) for s in spacing) if spacing else None
        same = gray is self._source and spacing == self.spacing
        self._source = gray
        self.scale = scale
        if not same:
            self.pyramid = gray if isinstance(gray, Pyramid) else Pyramid(np.asarray(gray, dtype=np.float32))
        self.spacing = spacing
        full = self.pyramid.value_range()
        self.presets = dict(presets) if presets else {"Default": (0.0, 1.0)}
        self.presets.setdefault("Full range", full if full[1] > full[0] else (full[0], full[0] + 1.0))
        self.default_levels = next(iter(self.presets.values()))
        if not (keep_levels and had_image):
            self.levels = self.default_levels
        if same:
            self.set_levels(*self.levels)
            if auto_range:
                self.fit()
            self._update_wl_label()
            return
        self.scale_bar.set_unit("mm" if self.spacing else "px")
        self._build_level_items()
        self.level = -1  # show the level the zoom asks for
        self._show_level(len(self.level_groups) - 1 if auto_range else self._wanted_level())
        self._apply_gray_lut()
        if auto_range:
            self.fit()
        self._choose_level()
        self._update_wl_label()

    def fit(self) -> None:
        """The whole image in view (tile groups have no bounds of their own for autoRange)."""
        if self.pyramid is not None:
            self.view.setRange(rect=self.native_rect(1, self.pyramid.base.shape), padding=0.02)

    def pixel_size(self) -> tuple[float, float]:
        """(row, col) size of one native pixel in view units (mm, or 1 px)."""
        return self.spacing if self.spacing else (1.0, 1.0)

    def native_rect(self, step: int, shape: tuple[int, int]) -> QRectF:
        sy, sx = self.pixel_size()
        return QRectF(0, 0, shape[1] * step * sx, shape[0] * step * sy)

    def _wanted_level(self) -> int:
        if self.pyramid is None:
            return 0
        px = self.view.viewPixelSize()[0]  # view units per screen pixel
        return self.pyramid.level_for(px / self.pixel_size()[1])

    def _show_level(self, k: int) -> None:
        """Each pyramid level is a group of tiles, rendered once (until W/L or invert change)
        and only where seen: zooming flips a group's visibility, panning paints visible tiles."""
        if self.pyramid is None or k == self.level:
            return
        self.level = k
        for i, group in enumerate(self.level_groups):
            group.setVisible(i == k)

    def _build_level_items(self) -> None:
        for group in self.level_groups:
            self.view.removeItem(group)
        self.level_groups, self.tiles = [], []
        sy, sx = self.pixel_size()
        for k, data in enumerate(self.pyramid.levels):
            group = pg.ItemGroup()
            step = 2**k
            for r in range(0, data.shape[0], TILE):
                for c in range(0, data.shape[1], TILE):
                    block = data[r : r + TILE, c : c + TILE]
                    tile = FastImageItem(block, axisOrder="row-major", autoLevels=False, levels=self.levels)
                    tile.setRect(QRectF(c * step * sx, r * step * sy, block.shape[1] * step * sx, block.shape[0] * step * sy))
                    tile.setParentItem(group)
                    self.tiles.append(tile)
            group.setVisible(False)
            self.view.addItem(group)
            self.level_groups.append(group)

    def shown_rect(self) -> QRectF:
        """What the base image covers on screen, in view units (mm or px)."""
        rect = QRectF()
        for tile in self.level_groups[self.level].childItems() if self.level_groups else []:
            rect = rect.united(tile.mapRectToView(tile.boundingRect()))
        return rect

    def _choose_level(self) -> None:
        if self.pyramid is not None and self.view.width() > 0:
            self._show_level(self._wanted_level())

    def set_invert(self, invert: bool) -> None:
        self.inverted = bool(invert)
        self._apply_gray_lut()

    def _apply_gray_lut(self) -> None:
        ramp = np.linspace(0, 255, 256).astype(np.uint8)
        if self.inverted:
            ramp = ramp[::-1]
        lut = np.stack([ramp] * 3, axis=1)
        for tile in self.tiles:  # hidden tiles render when next shown
            tile.setLookupTable(lut)

    # window / level ---------------------------------------------------
    def gray_levels(self) -> tuple[float, float]:
        return self.levels

    def set_levels(self, lo: float, hi: float, user: bool = False) -> None:
        """Window (low, high); ``user`` tells linked views to follow."""
        self.levels = (float(lo), float(hi))
        for tile in self.tiles:  # hidden tiles render when next shown
            tile.setLevels(self.levels)
        self._update_wl_label()
        if user:
            self.levels_changed.emit(*self.levels)

    def apply_preset(self, name: str) -> None:
        if name in self.presets:
            self.set_levels(*self.presets[name], user=True)

    def _drag_levels(self, dx: float, dy: float) -> None:
        if self.pyramid is None:
            return
        lo, hi = self.presets.get("Full range", (0.0, 1.0))
        self.set_levels(*drag_levels(self.levels, dx, dy, max(hi - lo, 1e-3)), user=True)

    def reset_view(self) -> None:
        """Double-click: default window/level, whole image in view."""
        self.set_levels(*self.default_levels, user=True)
        self.fit()

    def _update_wl_label(self) -> None:
        self.wl_label.setText(window_text(self.levels, self.scale) if self.pyramid is not None else "")
        self.wl_label.adjustSize()
        self._place_corners()

    # corners, readout ---------------------------------------------------
    def set_marker(self, text: str, side: str = "left") -> None:
        """Laterality/view marker (e.g. "L CC") in a top corner, away from the chest wall."""
        self.marker.setText(text)
        self.marker.setVisible(bool(text))
        self.marker.adjustSize()
        self.marker_side = side
        self._place_corners()

    def _place_corners(self) -> None:
        """Marker and W/L numbers inside the image area (never over the colour bar)."""
        area = self.graphics.mapFromScene(self.view.sceneBoundingRect()).boundingRect()
        left, right, bottom = area.left() + 6, area.right() - 6, area.bottom() - 6
        x = left if self.marker_side == "left" else max(left, right - self.marker.width())
        self.marker.move(int(x), int(area.top() + 6))
        self.wl_label.move(int(left), int(max(area.top() + 6, bottom - self.wl_label.height())))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_corners()

    def native_pixel_at(self, view_point: QPointF) -> tuple[int, int] | None:
        """(row, col) of the native pixel at a point in view coordinates, None outside the image."""
        if self.pyramid is None:
            return None
        sy, sx = self.pixel_size()
        row, col = int(np.floor(view_point.y() / sy)), int(np.floor(view_point.x() / sx))
        rows, cols = self.pyramid.base.shape
        return (row, col) if 0 <= row < rows and 0 <= col < cols else None

    def readout_text(self, view_point: QPointF) -> str:
        pixel = self.native_pixel_at(view_point)
        if pixel is None:
            return ""
        row, col = pixel
        value = float(self.pyramid.base[row, col])
        sy, sx = self.pixel_size()
        where = f"x {(col + 0.5) * sx:7.1f} mm  y {(row + 0.5) * sy:7.1f} mm" if self.spacing else "(no pixel spacing)"
        shown = f"{float(self.scale.to_modality(value)):.6g}" if self.scale is not None else f"{value:.4f}"
        text = f"{where}  [row {row}, col {col}]  value {shown}"
        if self.overlay_visible():
            r, c = row // self.heat_step, col // self.heat_step
            if r < self.heat.shape[0] and c < self.heat.shape[1]:
                text += f"  overlay {float(self.heat[r, c]):.3g}"
        return text

    def _mouse_moved(self, scene_pos) -> None:
        if self.pyramid is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return
        self.readout.setText(self.readout_text(self.view.mapSceneToView(scene_pos)))

    def set_lesions(self, shapes: list[dict] | None) -> None:
        """Lesion marks in this view's pixel indices (``lesion_outlines``), drawn under the overlay."""
        self.lesions.set_shapes(shapes, self.pixel_size())

    # overlay ----------------------------------------------------------
    def set_overlay(
        self, heat: np.ndarray | None, cmap: str = "inferno", levels=(0.0, 1.0), label: str = "", step: int = 1, full=None
    ) -> None:
        """``heat`` covers ``heat.shape * step`` native pixels from the top-left corner;
        ``full`` (optional callable) returns it on the full native grid for exports."""
        self.heat = None if heat is None else np.asarray(heat, dtype=np.float32)
        self.cmap, self.heat_levels, self.heat_label = cmap, tuple(float(v) for v in levels), label
        self.heat_step, self.full_heat = int(step), full
        if self.heat is None:
            self.overlay.clear()
            self.overlay.setVisible(False)
            if self.colour_bar is not None:
                self.colour_bar.setVisible(False)
            return
        self.overlay.setImage(self.heat, levels=self.heat_levels, lut=self._overlay_lut())
        self.overlay.setRect(self.native_rect(self.heat_step, self.heat.shape))
        self.overlay.setVisible(True)
        if self.colour_bar is not None:
            self.colour_bar.setColorMap(colormap(cmap))
            self.colour_bar.setLevels(self.heat_levels)
            self.colour_bar.axis.setLabel(label)
            self.colour_bar.setVisible(True)
        self._place_corners()

    def _overlay_lut(self) -> np.ndarray:
        return np.round(overlay_lut(self.cmap, self.heat_threshold) * 255).astype(np.uint8)

    def set_threshold(self, threshold: float) -> None:
        """The share of the overlay's scale left transparent (the alpha ramp starts there)."""
        self.heat_threshold = float(threshold)
        if self.heat is not None:
            self.overlay.setLookupTable(self._overlay_lut())

    def set_opacity(self, opacity: float) -> None:
        self.overlay.setOpacity(float(opacity))

    def opacity(self) -> float:
        return float(self.overlay.opacity())

    def overlay_visible(self) -> bool:
        return self.heat is not None and self.overlay.isVisible() and self.overlay.image is not None

    def native_overlay(self) -> np.ndarray | None:
        """The overlay on the base image's full grid (computed on demand)."""
        if not self.overlay_visible():
            return None
        if self.full_heat is not None:
            return np.asarray(self.full_heat(), dtype=np.float32)
        full = np.repeat(np.repeat(self.heat, self.heat_step, axis=0), self.heat_step, axis=1)
        rows, cols = self.gray.shape
        out = np.zeros((rows, cols), np.float32)
        out[: min(rows, full.shape[0]), : min(cols, full.shape[1])] = full[:rows, :cols]
        return out

    def blended(self) -> np.ndarray | None:
        """What the view shows, at the image's full resolution, as uint8 RGB (overlay blended in)."""
        if self.gray is None:
            return None
        return blend(
            self.gray,
            self.native_overlay(),
            self.cmap,
            self.opacity(),
            self.heat_levels,
            self.gray_levels(),
            self.inverted,
            self.heat_threshold,
        )
