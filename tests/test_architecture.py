"""Layering contracts: the core never imports Qt (DESIGN.md)."""

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import arfl_studio

PACKAGE = Path(arfl_studio.__file__).parent
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "superqt")


def _core_files():
    return [p for p in PACKAGE.rglob("*.py") if "gui" not in p.relative_to(PACKAGE).parts]


def test_no_qt_import_statement_outside_gui():
    offenders = []
    for path in _core_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.split(".")[0] in QT_MODULES]
    assert not offenders, offenders


def test_importing_every_core_module_loads_no_qt():
    modules = [
        m.name for m in pkgutil.walk_packages([str(PACKAGE)], prefix="arfl_studio.")
        if ".gui" not in m.name and m.name != "arfl_studio.__main__"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
