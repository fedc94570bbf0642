"""Layering contracts: the core never imports Qt (DESIGN.md).

The import statements themselves (layers, no Qt outside gui/) are import-linter contracts in
pyproject.toml, run by `lint-imports` in .ci/run and pre-commit; this test checks what they
cannot see: that importing the core at run time loads no Qt (e.g. through a third-party package)."""

import pkgutil
import subprocess
import sys
from pathlib import Path

import arfl_studio

PACKAGE = Path(arfl_studio.__file__).parent
QT_MODULES = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "shiboken6", "superqt")


def test_importing_every_core_module_loads_no_qt():
    modules = [
        m.name
        for m in pkgutil.walk_packages([str(PACKAGE)], prefix="arfl_studio.")
        if ".gui" not in m.name and m.name != "arfl_studio.__main__"
    ]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {QT_MODULES!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
