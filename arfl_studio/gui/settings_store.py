"""QSettings: window geometry/state and recent folders."""

from __future__ import annotations

from PySide6.QtCore import QSettings

ORGANIZATION = "ARFL"
APPLICATION = "ARFL Studio"
MAX_RECENT = 8


def settings() -> QSettings:
    return QSettings(ORGANIZATION, APPLICATION)


def recent_folders() -> list[str]:
    value = settings().value("recent_folders", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent_folder(path: str) -> list[str]:
    folders = [path] + [p for p in recent_folders() if p != path]
    folders = folders[:MAX_RECENT]
    settings().setValue("recent_folders", folders)
    return folders
