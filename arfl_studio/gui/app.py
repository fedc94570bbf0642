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
    if not hasattr(app, "_gui_thread_gc"):
        # The cyclic GC must never run in a worker thread: it would destroy Qt widgets there,
        # and a widget's destructor (wanting the GIL under a Qt lock) deadlocks against the UI
        # thread. Automatic collection is switched off; a timer collects on the UI thread.
        from pyqtgraph.util.garbage_collector import GarbageCollector

        app._gui_thread_gc = GarbageCollector(interval=0.5)
    _own_decode_pool(app)
    return app


def _own_decode_pool(app) -> None:
    """The app's JPEG 2000/JPEG-LS decoder processes: started on the first compressed image,
    stopped when the app quits (or, for a QApplication that never quits, at interpreter exit)."""
    import atexit

    from arfl_studio.data.dicom import decode_pool

    if getattr(app, "decode_pool", None) is None:
        app.decode_pool = decode_pool.DecodePool(workers=2)
        decode_pool.install(app.decode_pool)
        app.aboutToQuit.connect(app.decode_pool.shutdown)
        atexit.register(app.decode_pool.shutdown)


def run_app(startup_probe: bool = False, paths: list[str] | None = None) -> int:
    """``arfl-studio`` with no arguments: the main window on the demo dataset; ``arfl-studio PATH ...``:
    the window opening PATH (a DICOM folder, a DICOM file, a run folder) instead.

    ``startup_probe``: print the seconds from process start to the shown main window
    and quit (measures start-up, frozen or not; no demo work starts).
    """
    app = make_app()
    from arfl_studio.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    if startup_probe:
        from PySide6.QtCore import QTimer

        def report() -> None:
            print(f"main window shown {_seconds_since_process_start():.2f} s after process start", flush=True)
            window.close()
            app.quit()

        QTimer.singleShot(0, report)  # after the first paint
        return int(app.exec())
    if paths:
        window.open_paths(list(paths))
    else:
        window.start_demo()
    return int(app.exec())


def _seconds_since_process_start() -> float:
    import time

    import psutil

    return time.time() - psutil.Process().create_time()


def run_screenshots(out_dir: str) -> int:
    """``arfl-studio --screenshot DIR``: offscreen demo session, one PNG per pane."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    make_app()
    from arfl_studio.gui.screenshots import take_screenshots

    return take_screenshots(out_dir)
