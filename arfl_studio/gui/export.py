"""Exports from the app: comparison tables (via the experiments API), plots, overlays.

Plots go out as publication figures: a pane gives each plot a ``figure_source`` that
draws it with matplotlib (:mod:`arfl_studio.experiments.figures`, the CLI's figures):
true vector SVG/PDF, every fold as mean ± std, titled with run, model and fold. A plot
with nothing to draw is refused (:class:`EmptyFigure`), never written empty. Overlays
are blended into pixels explicitly (what the view shows, not a screenshot of it).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters  # noqa: F401 - registers the exporters
from PySide6.QtWidgets import QGraphicsItem

from arfl_studio.experiments.figures import EmptyFigure
from arfl_studio.gui.widgets.tables import rgb_to_qimage

PLOT_FORMATS = (".png", ".svg", ".pdf")

TABLE_FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".md": "md", ".tex": "tex"}


def export_table(results: dict, path: str | Path) -> Path:
    from arfl_studio.experiments import export_table as core_export

    path = Path(path)
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"table format must be one of {sorted(TABLE_FORMATS)}, got {path.suffix!r}")
    core_export(results, path, fmt=fmt)
    return path


def export_run_table(run_dir: str | Path, path: str | Path) -> Path:
    from arfl_studio.experiments import collect

    return export_table(collect(run_dir), path)


def _title(plot) -> str:
    """The plot's whole title (a ThrottledPlot elides what it shows)."""
    whole = getattr(plot, "title_text", None)
    return whole() if callable(whole) else plot.getPlotItem().titleLabel.text


def export_plot(plot: pg.PlotWidget, path: str | Path, width: int = 1200) -> Path:
    """Write one plot as .png, .svg or .pdf: the pane's publication figure when it has one."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_FORMATS:
        raise ValueError(f"plots export to {', '.join(PLOT_FORMATS)}, got {path.suffix!r} ({path})")
    source = getattr(plot, "figure_source", None)
    if source is not None:
        return source(path)
    if hasattr(plot, "has_data") and not plot.has_data():
        raise EmptyFigure(f"nothing to plot yet in {_title(plot) or 'this plot'}")
    item = plot.getPlotItem()
    if path.suffix.lower() == ".svg":
        _render_svg(plot, path)
    elif path.suffix.lower() == ".pdf":
        _render_pdf(plot, path)
    else:
        exporter = pg.exporters.ImageExporter(item)
        exporter.parameters()["width"] = width
        exporter.export(str(path))
    return path


def with_suffix_of(path: str | Path, chosen_filter: str = "") -> Path:
    """The path the user typed; without a plot suffix, the one of the filter they chose (else .png)."""
    path = Path(path)
    if path.suffix.lower() in PLOT_FORMATS:
        return path
    for ext in PLOT_FORMATS:
        if f"*{ext}" in chosen_filter:
            return path.with_name(path.name + ext)
    return path.with_name(path.name + ".png")


def export_pane_plots(
    plots: dict[str, pg.PlotWidget], folder: str | Path, formats: tuple[str, ...] = PLOT_FORMATS
) -> tuple[list[Path], list[str]]:
    """Every plot that has something to show, in every format: (written files, why others were skipped).

    Raises :class:`EmptyFigure` when no plot has anything to show, before writing anything.
    """
    folder = Path(folder)
    written, skipped = [], []
    for name, plot in plots.items():
        try:
            first = export_plot(plot, folder / f"{name}{formats[0]}")
        except EmptyFigure as exc:
            skipped.append(f"{name}: {exc}")
            continue
        written.append(first)
        written += [export_plot(plot, folder / f"{name}{ext}") for ext in formats[1:]]
    if not written:
        raise EmptyFigure("nothing to export yet — " + "; ".join(skipped))
    return written, skipped


@contextmanager
def _uncached(widget):
    """Items paint themselves, not their cached screen pixmaps, so a vector export stays vector."""
    scene = widget.scene() if hasattr(widget, "scene") else None
    items = scene.items() if scene is not None else []
    modes = [item.cacheMode() for item in items]
    for item in items:
        item.setCacheMode(QGraphicsItem.CacheMode.NoCache)
    try:
        yield
    finally:
        for item, mode in zip(items, modes):
            item.setCacheMode(mode)


def _render_svg(widget, path: Path) -> None:
    """Vector SVG through QSvgGenerator (pyqtgraph's SVGExporter cannot parse Qt 6.12's path data)."""
    from PySide6.QtCore import QRect, QSize
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    size = widget.size()
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(QSize(size.width(), size.height()))
    generator.setViewBox(QRect(0, 0, size.width(), size.height()))
    generator.setTitle(_title(widget) or "ARFL Studio plot")
    painter = QPainter(generator)
    try:
        with _uncached(widget):
            widget.render(painter)
    finally:
        painter.end()
    if not path.is_file():
        raise OSError(f"could not write {path}")


def _render_pdf(widget, path: Path) -> None:
    """Vector PDF: the widget painted into a QPdfWriter page of its own size (lines stay lines)."""
    from PySide6.QtCore import QMarginsF, QSizeF
    from PySide6.QtGui import QPageLayout, QPageSize, QPainter, QPdfWriter

    size = widget.size()
    writer = QPdfWriter(str(path))
    writer.setResolution(96)
    writer.setTitle(_title(widget) or "ARFL Studio plot")
    writer.setPageSize(QPageSize(QSizeF(size.width() * 72 / 96, size.height() * 72 / 96), QPageSize.Unit.Point))
    writer.setPageMargins(QMarginsF(0, 0, 0, 0), QPageLayout.Unit.Point)
    painter = QPainter(writer)
    try:
        with _uncached(widget):
            widget.render(painter)
    finally:
        painter.end()
    if not path.is_file():
        raise OSError(f"could not write {path}")


def save_rgb(rgb: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix.lower() == ".svg":
        # an SVG holding the blended pixels as an embedded PNG
        import base64

        from PySide6.QtCore import QBuffer, QByteArray, QIODevice

        image = rgb_to_qimage(rgb)
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "PNG")
        h, w = rgb.shape[:2]
        b64 = base64.b64encode(bytes(data)).decode()
        path.write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
            f'<image width="{w}" height="{h}" href="data:image/png;base64,{b64}"/></svg>',
            encoding="utf-8",
        )
        return path
    if not rgb_to_qimage(rgb).save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def export_overlay(view, path: str | Path) -> Path:
    """The view's image with its overlay blended in, at the image's own resolution."""
    rgb = view.blended()
    if rgb is None:
        raise ValueError("the view shows no image to export")
    return save_rgb(rgb, path)
