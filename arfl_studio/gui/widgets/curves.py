"""Plots that redraw a few times per second, by ``setData`` on items made once.

Callers hand new data to :meth:`ThrottledPlot.set_curve` as often as they like; a
timer pushes the latest data of the curves that changed into their existing
``PlotDataItem`` at most ``1 / interval`` times per second. No plot item is ever
created per update, so a long run neither slows the event loop nor grows memory.

The legend sits in its own column right of the axes (never over the curves), or under
them when the plot is narrow (a 1024-px laptop window); a title longer than the plot is
elided (the whole title in the tooltip), so the axes always get the widget's width. The
axes print plain values (no "x0.001" SI scaling). A pane may set
``figure_source(path)``: exporting the plot then writes the publication figure
(matplotlib, :mod:`arfl_studio.experiments.figures`) instead of a screen grab. Each plot
exports on its own from its right-click menu; the file's suffix chooses the format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QGraphicsItem, QSizePolicy

from arfl_studio.experiments.figures import METHOD_COLORS, color_for  # noqa: F401 - one palette for app and figures

PLOT_FILTER = "SVG, vector (*.svg);;PDF, vector (*.pdf);;PNG (*.png)"


class ThrottledPlot(pg.PlotWidget):
    """A plot whose curves are keyed by name and refreshed by a timer."""

    def __init__(self, title: str = "", x_label: str = "", y_label: str = "", interval_ms: int = 250, parent=None):
        super().__init__(parent=parent, background="w")
        self._title: tuple[str, dict] = ("", {})
        self._legend_below: bool | None = None
        self.setTitle(title, color="#222", size="11pt")
        item = self.getPlotItem()
        item.setLabel("bottom", x_label, color="#222")
        item.setLabel("left", y_label, color="#222")
        # No grid (alpha-blended grid lines double the software-raster paint time) and a
        # cached legend and axes: a redraw repaints the curves, not the furniture.
        for axis in ("bottom", "left"):
            item.getAxis(axis).setTextPen("#222")
            item.getAxis(axis).setPen("#666")
            item.getAxis(axis).enableAutoSIPrefix(False)  # "loss (x0.001)" hid the real values
            item.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # The legend gets its own grid cell right of the view box: it can never cover a curve.
        self._legend = pg.LegendItem(labelTextColor="#222", labelTextSize="8pt", verSpacing=-6)
        self._legend.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._place_legend()
        self._legend.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.figure_source = None  # callable(path) -> Path, set by the pane that owns the plot
        self.export_name = "plot"  # the file name the export dialog proposes
        menu = item.getViewBox().menu  # right-click on the plot
        menu.addSeparator()
        menu.addAction("Export this plot (SVG, PDF or PNG)…").triggered.connect(lambda: self.export_dialog())
        self._items: dict[str, pg.PlotDataItem] = {}
        self._data: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dirty: set[str] = set()
        self.redraws = 0  # how many setData calls the timer made (tests and benchmark read it)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    def export_dialog(self, folder: str = "") -> Path | None:
        """Ask for a file and write this plot there; the suffix (.svg, .pdf, .png) chooses the format."""
        from PySide6.QtWidgets import QFileDialog

        from arfl_studio.gui.dialogs import show_error
        from arfl_studio.gui.export import export_plot, with_suffix_of

        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export {self.title_text() or 'plot'}", str(Path(folder) / f"{self.export_name}.svg"), PLOT_FILTER
        )
        if not path:
            return None
        try:
            return export_plot(self, with_suffix_of(path, chosen))
        except Exception as exc:  # the user picked the path; say what went wrong
            show_error(self, "Export failed", str(exc))
            return None

    # ------------------------------------------------------------ fitting a narrow widget
    def setTitle(self, title: str | None = None, **args) -> None:
        """The plot's title, elided to the widget's width (pyqtgraph would widen the plot to fit it)."""
        earlier = getattr(self, "_title", ("", {}))  # PlotWidget.__init__ calls this before ours runs
        self._title = (title or "", dict(args) or earlier[1])
        if hasattr(self, "_legend"):
            self._refit()
        else:
            self._fit_title()

    def title_text(self) -> str:
        """The whole title (what is shown may be elided)."""
        return self._title[0]

    def _fit_title(self, width: int | None = None) -> None:
        text, args = self._title
        font = QFont(self.font())
        size = str(args.get("size", "")).removesuffix("pt")
        if size:
            font.setPointSizeF(float(size))
        width = self.width() if width is None else width
        legend = self._legend_width() if getattr(self, "_legend_below", None) is False else 0.0
        available = max(60, int(width - 70 - legend))  # less the left axis and a legend beside the axes
        shown = QFontMetrics(font).elidedText(text, Qt.TextElideMode.ElideRight, available)
        item = self.getPlotItem()
        item.setTitle(shown or None, **args)
        item.titleLabel.setMinimumWidth(0)  # the elided text fits; the title must not widen the plot
        self.setToolTip(text if shown != text else "")

    def _refit(self) -> None:
        """Legend and title for the current width, then the plot laid out to the widget again
        (a plot that grew for a long title does not shrink back by itself)."""
        self._place_legend()
        self._fit_title()
        pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)

    def _legend_width(self) -> float:
        """One legend entry's natural width (sample + text; the legend's geometry is what the layout gave it)."""
        return max(
            (sample.boundingRect().width() + label.item.boundingRect().width() + 12 for sample, label in self._legend.items), default=0.0
        )

    def _place_legend(self, width: int | None = None) -> None:
        """Legend right of the axes when there is room, else under them in as many columns as fit."""
        legend, layout = self._legend, self.getPlotItem().layout
        width = max(1, self.width() if width is None else width)
        one_column = self._legend_width()
        below = one_column > 0.3 * width
        legend.setColumnCount(max(1, int((width - 60) // max(one_column, 1))) if below else 1)
        if below == self._legend_below:
            return
        if self._legend_below is not None:
            layout.removeItem(legend)
        layout.addItem(legend, *((4, 1) if below else (2, 3)))
        layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self._legend_below = below

    def resizeEvent(self, event) -> None:
        if hasattr(self, "_legend"):  # not during PlotWidget.__init__; before the plot takes the new size
            self._place_legend(event.size().width())
            self._fit_title(event.size().width())
        super().resizeEvent(event)

    def curve(
        self,
        key: str,
        name: str | None = None,
        color: str | None = None,
        dash: bool = False,
        symbol: str | None = None,
        in_legend: bool = True,
    ) -> pg.PlotDataItem:
        """The item for ``key``, made on first use (then only ever updated)."""
        if key not in self._items:
            pen = pg.mkPen(
                color or color_for(key), width=2, style=pg.QtCore.Qt.PenStyle.DashLine if dash else pg.QtCore.Qt.PenStyle.SolidLine
            )
            kwargs = {"pen": pen, "name": name or key}
            if symbol:
                kwargs.update(symbol=symbol, symbolSize=6, symbolBrush=color or color_for(key), symbolPen=None)
            self._items[key] = self.getPlotItem().plot([], [], **kwargs)
            if in_legend:
                self._legend.addItem(self._items[key], kwargs["name"])
                self._refit()
        return self._items[key]

    def set_curve(self, key: str, x, y, **style) -> None:
        self.curve(key, **style)
        self._data[key] = (np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        self._dirty.add(key)

    def flush(self) -> None:
        for key in list(self._dirty):
            x, y = self._data[key]
            self._items[key].setData(x, y)
            self.redraws += 1
        self._dirty.clear()

    def clear_curves(self) -> None:
        """Empty every curve (items stay) — e.g. when the fold selector changes."""
        for key in self._items:
            self._data[key] = (np.empty(0), np.empty(0))
            self._dirty.add(key)

    def remove_all(self) -> None:
        """Drop the items themselves (a new comparison starts)."""
        for item in self._items.values():
            self.getPlotItem().removeItem(item)
            self._legend.removeItem(item)
        self._items.clear()
        self._refit()
        self._data.clear()
        self._dirty.clear()

    def item_count(self) -> int:
        return len(self.getPlotItem().listDataItems())

    def points(self, key: str) -> int:
        item = self._items.get(key)
        if item is None or item.xData is None:
            return 0
        return len(item.xData)

    def legend_labels(self) -> list[str]:
        return [label.text for _sample, label in self._legend.items]

    def has_data(self) -> bool:
        return any(len(x) for x, _y in self._data.values())
