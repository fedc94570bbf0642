"""Qt is imported only under arfl_studio/gui/ (the core must run headless)."""

import re
from pathlib import Path

import arfl_studio

QT = re.compile(r"^\s*(from|import)\s+(PySide6|PyQt5|PyQt6|pyqtgraph|superqt|qtpy)\b", re.MULTILINE)


def test_nothing_outside_gui_imports_qt():
    root = Path(arfl_studio.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if "gui" not in p.relative_to(root).parts[:1] and QT.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
