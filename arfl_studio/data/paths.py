"""Where ARFL Studio keeps its own files (demo data, preprocessing cache, keys)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_data_dir() -> Path:
    """The user's data folder for ARFL Studio (``ARFL_STUDIO_DATA`` overrides it)."""
    env = os.environ.get("ARFL_STUDIO_DATA")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "ARFL Studio"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "ARFL Studio"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "arfl-studio"
