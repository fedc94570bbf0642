"""Starting the app: QApplication setup, the interactive window, and the screenshot run."""

from __future__ import annotations

import os
import sys

from arfl_studio import __version__
from arfl_studio.bundled import APP_ID, ICON_SIZES, icon_path
from arfl_studio.gui.settings_store import APPLICATION, ORGANIZATION


def _window_icon():
    from PySide6.QtGui import QIcon

    icon = QIcon()
    for size in ICON_SIZES:
        path = icon_path(size)
        if path.is_file():
            icon.addFile(str(path))
    return icon


def make_app(argv: list[str] | None = None):
    """The one QApplication (created on first call), named for QSettings."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_ID)  # Wayland/X11 match the window to the installed launcher and icon
    app.setWindowIcon(_window_icon())
    import pyqtgraph as pg

    pg.setConfigOptions(antialias=False, imageAxisOrder="row-major")  # software raster: AA paints cost 3-4x
    return app


def run_app() -> int:
    """``arfl-studio`` with no arguments: the main window on the demo dataset."""
    app = make_app()
    from arfl_studio.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    window.start_demo()
    return int(app.exec())


def run_screenshots(out_dir: str) -> int:
    """``arfl-studio --screenshot DIR``: offscreen demo session, one PNG per pane."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    make_app()
    from arfl_studio.gui.screenshots import take_screenshots

    return take_screenshots(out_dir)
