"""Build the standalone one-folder app with PyInstaller and say how big it is.

    python -m pip install -e ".[package]"
    python packaging/build.py            # -> dist/arfl-studio/arfl-studio

The bundle carries Python, Qt, torch (with its CUDA libraries where the
installed torch has them), pydicom and its decoder plugins, and the example
configs and icons.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dist", default=str(ROOT / "dist"), help="where the bundle goes (default: dist/)")
    parser.add_argument("--work", default=str(ROOT / "build" / "pyinstaller"), help="PyInstaller's work folder")
    args = parser.parse_args(argv)
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        print('PyInstaller is not installed: python -m pip install -e ".[package]"', file=sys.stderr)
        return 2
    start = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        str(ROOT / "packaging" / "arfl-studio.spec"),
        "--noconfirm",
        "--distpath",
        args.dist,
        "--workpath",
        args.work,
        "--log-level",
        "WARN",
    ]
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        print(f"build failed after {seconds:.0f} s (PyInstaller exit {result.returncode})", file=sys.stderr)
        return result.returncode
    bundle = Path(args.dist) / "arfl-studio"
    size = folder_size(bundle)
    print(f"built {bundle} in {seconds:.0f} s: {size / 2**20:,.0f} MiB in {sum(1 for _ in bundle.rglob('*'))} files")
    print(f"run it: {bundle / ('arfl-studio.exe' if os.name == 'nt' else 'arfl-studio')} --version")
    return 0


if __name__ == "__main__":
    sys.exit(main())
