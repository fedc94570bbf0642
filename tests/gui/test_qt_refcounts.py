"""The Qt binding must not leak away references to None, True or False.

PySide6 6.12.0 on Python 3.11 drops one reference to None (or a bool) in each call to
QLabel.setText, signal emit and processEvents; after a few thousand label updates
CPython aborts with "none_dealloc" (it happened mid-attack in the screenshot run).
This pins the calls the app makes thousands of times per session.
"""

import sys

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Signal
from PySide6.QtWidgets import QLabel, QProgressBar


class _Emitter(QObject):
    event = Signal(object)


def _singletons() -> int:
    return sys.getrefcount(None) + sys.getrefcount(True) + sys.getrefcount(False)


def test_frequent_qt_calls_keep_none_and_bool_references():
    label, bar, emitter = QLabel(), QProgressBar(), _Emitter()
    received = []
    emitter.event.connect(received.append)
    calls = [
        lambda: label.setText("epoch 3/10"),
        lambda: bar.setValue(41),
        lambda: emitter.event.emit({"done": 1, "total": 2}),
        lambda: QCoreApplication.processEvents(),
        lambda: QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5),
    ]
    for call in calls:
        before = _singletons()
        for _ in range(300):
            call()
        assert _singletons() - before > -30, "the Qt binding drops references to None/True/False: pin another PySide6"
    assert len(received) == 300
