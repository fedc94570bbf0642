"""Every pane at 1024×700: each plot lies wholly inside the window (the widget and the plot drawn in
it), and every table column is visible or reachable by a visible scroll bar. The same at 2560×1440,
where the plots must also grow."""

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QRect, QRectF
from PySide6.QtWidgets import QAbstractItemView, QAbstractScrollArea, QTabWidget

from .conftest import report_with_one_flip, wait_task


def visible_rect(widget) -> QRect:
    """The part of ``widget`` not clipped by its ancestors (scroll viewports, splitters, the window), in window coordinates."""
    top = widget.window()
    rect = QRect(widget.mapTo(top, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        rect = rect.intersected(QRect(parent.mapTo(top, QPoint(0, 0)), parent.size()))
        parent = parent.parentWidget()
    return rect.intersected(top.rect())


def wholly_visible(widget) -> bool:
    return widget.isVisible() and visible_rect(widget).size() == widget.size()


def plot_problems(graphics: pg.GraphicsView) -> list[str]:
    """The widget clipped, or a plot (axes, title, legend) drawn wider or taller than the widget."""
    name = graphics.objectName() or type(graphics).__name__
    problems = [] if wholly_visible(graphics) else [f"{name} is clipped by the window ({visible_rect(graphics)} of {graphics.size()})"]
    shown = QRectF(graphics.viewport().rect()).adjusted(-1, -1, 1, 1)
    items = (
        [graphics.plotItem]
        if isinstance(graphics, pg.PlotWidget)
        else [i for i in graphics.ci.items if isinstance(i, pg.PlotItem)]
        if isinstance(graphics, pg.GraphicsLayoutWidget)
        else []
    )
    for item in items:
        drawn = graphics.mapFromScene(item.sceneBoundingRect()).boundingRect()
        if not shown.contains(QRectF(drawn)):
            problems.append(
                f"{name}'s plot needs {drawn.width()}×{drawn.height()} px and gets "
                f"{graphics.viewport().width()}×{graphics.viewport().height()}"
            )
    return problems


def column_problems(table: QAbstractItemView) -> list[str]:
    header = table.horizontalHeader() if hasattr(table, "horizontalHeader") else table.header()
    model = table.model()
    if model is None:
        return []
    view_width = table.viewport().width()
    bar = table.horizontalScrollBar()
    reachable = bar.isVisible() and bar.maximum() > 0 and wholly_visible(bar)
    problems = [] if wholly_visible(table) or reachable else [f"{table.objectName() or table} is clipped"]
    for i in range(model.columnCount()):
        if header.isSectionHidden(i):
            continue
        left = header.sectionPosition(i) - header.offset()
        right = left + header.sectionSize(i)
        inside = left >= -1 and right <= view_width + 1 and visible_rect(table.viewport()).width() >= view_width
        if not (inside or reachable):
            problems.append(
                f"column {model.headerData(i, 1)!r} of {type(table).__name__} in "
                f"{table.parentWidget().objectName() or type(table.parentWidget()).__name__} "
                f"is neither visible nor reachable by a scroll bar"
            )
    return problems


def each_tab_state(pane):
    """Show each page of every tab widget in ``pane`` once (a page hidden behind a tab is checked too)."""
    yield
    for tabs in pane.findChildren(QTabWidget):
        for i in range(tabs.count()):
            tabs.setCurrentIndex(i)
            yield


def layout_problems(qtbot, window) -> dict[str, list[str]]:
    problems = {}
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        pane = window.tabs.currentWidget()
        found = []
        for _ in each_tab_state(pane):
            qtbot.wait(50)
            for graphics in pane.findChildren(pg.GraphicsView):
                if graphics.isVisible():
                    found += plot_problems(graphics)
            for table in pane.findChildren(QAbstractItemView):
                if table.isVisible() and isinstance(table, QAbstractScrollArea) and hasattr(table, "horizontalScrollBar"):
                    if hasattr(table, "horizontalHeader") or hasattr(table, "header"):
                        found += column_problems(table)
        problems[window.tabs.tabText(index)] = sorted(set(found))
    return problems


@pytest.fixture
def full_window(qtbot, window, demo_dir, trained_run):
    """The window with a dataset, an opened run and its attack, and a case in the viewer."""
    from arfl_studio.experiments.run_history import save_attack

    d = window.dataset_pane
    with qtbot.waitSignal(d.scanned, timeout=60_000):
        d.load(demo_dir)
    wait_task(qtbot, d.task)
    qtbot.waitUntil(lambda: not d.busy(), timeout=60_000)
    save_attack(trained_run, {"method": "B", "fold": 1, "seed": None}, report_with_one_flip({"index": 0}))
    assert window.open_run(trained_run) is not None
    window.attack_pane.open_flipped(0)
    wait_task(qtbot, window.viewer_pane.task)
    return window


@pytest.mark.parametrize("size", [(1024, 700), (2560, 1440)], ids=["laptop", "desktop"])
def test_every_pane_fits(qtbot, full_window, size):
    full_window.resize(*size)
    qtbot.wait(200)
    problems = layout_problems(qtbot, full_window)
    assert not any(problems.values()), problems
    if size == (2560, 1440):
        full_window.tabs.setCurrentWidget(full_window.attack_pane)
        qtbot.wait(50)
        assert full_window.attack_pane.roc_plot.width() > 700  # the plots grow with the screen
