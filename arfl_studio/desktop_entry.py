"""Desktop integration on Linux: the .desktop launcher, the AppStream metainfo and the icons.

``arfl-studio --install-desktop-entry`` installs them for the current user (XDG
data home, usually ~/.local/share): the app then shows in the menu with its icon.
The files under ``packaging/`` are these same texts with ``Exec=arfl-studio``
(a test keeps them identical).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from xml.sax.saxutils import escape

from arfl_studio import __version__
from arfl_studio.atomic import write_bytes
from arfl_studio.bundled import APP_ID, APP_NAME, ICON_SIZES, icon_path

SUMMARY = "Train, attack and inspect adversarially robust breast-cancer diagnosis models"
DESCRIPTION = (
    "ARFL Studio trains mammogram diagnosis models with adversarially robust feature learning (ARFL) "
    "and the methods it is compared with, attacks them (FGSM, PGD and stronger evaluation attacks), "
    "and shows saliency maps and adversarial perturbations on the DICOM mammograms."
)
RELEASE_DATE = "2026-11-30"  # of __version__; AppStream wants one per release
HOMEPAGE = "https://github.com/arfl-studio/arfl-studio"


def desktop_file_text(exec_command: str = "arfl-studio") -> str:
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            f"Name={APP_NAME}",
            "GenericName=Mammography AI robustness workbench",
            f"Comment={SUMMARY}",
            f"Exec={exec_command} %F",  # files and folders from a file manager's "Open with" (arfl-studio PATH)
            "MimeType=application/dicom;",
            "Icon=arfl-studio",
            "Terminal=false",
            "Categories=Science;MedicalSoftware;Education;",
            "Keywords=mammography;DICOM;adversarial;robustness;deep learning;radiology;",
            f"StartupWMClass={APP_NAME}",
            "",
        ]
    )


def metainfo_text() -> str:
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            "<component type=\"desktop-application\">",
            f"  <id>{APP_ID}</id>",
            "  <metadata_license>CC0-1.0</metadata_license>",
            "  <project_license>MIT</project_license>",
            f"  <name>{escape(APP_NAME)}</name>",
            f"  <summary>{escape(SUMMARY)}</summary>",
            "  <description>",
            f"    <p>{escape(DESCRIPTION)}</p>",
            "  </description>",
            f'  <launchable type="desktop-id">{APP_ID}.desktop</launchable>',
            f'  <url type="homepage">{HOMEPAGE}</url>',
            "  <categories>",
            "    <category>Science</category>",
            "    <category>MedicalSoftware</category>",
            "  </categories>",
            "  <provides>",
            "    <binary>arfl-studio</binary>",
            "  </provides>",
            "  <releases>",
            f'    <release version="{__version__}" date="{RELEASE_DATE}"/>',
            "  </releases>",
            '  <content_rating type="oars-1.1"/>',
            "</component>",
            "",
        ]
    )


def exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key, double-quoted where the Desktop Entry
    Specification requires it (a space or a reserved character; shell single quotes are not allowed)."""
    if not any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def _launch_command() -> str:
    """What the launcher runs: the frozen executable, the installed script, or this Python."""
    if getattr(sys, "frozen", False):
        return exec_quote(sys.executable)
    script = shutil.which("arfl-studio")
    if script:
        return exec_quote(script)
    return f"{exec_quote(sys.executable)} -m arfl_studio"


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def install_desktop_entry(target: Path | None = None) -> list[Path]:
    """Write the launcher, metainfo and icons under ``target`` (XDG data home); returns what was written."""
    target = Path(target) if target is not None else data_home()
    written = []
    launcher = target / "applications" / f"{APP_ID}.desktop"
    write_bytes(launcher, desktop_file_text(_launch_command()).encode())
    written.append(launcher)
    metainfo = target / "metainfo" / f"{APP_ID}.metainfo.xml"
    write_bytes(metainfo, metainfo_text().encode())
    written.append(metainfo)
    hicolor = target / "icons" / "hicolor"
    for size in ICON_SIZES:
        dest = hicolor / f"{size}x{size}" / "apps" / "arfl-studio.png"
        write_bytes(dest, icon_path(size).read_bytes())
        written.append(dest)
    dest = hicolor / "scalable" / "apps" / "arfl-studio.svg"
    write_bytes(dest, icon_path().read_bytes())
    written.append(dest)
    return written
