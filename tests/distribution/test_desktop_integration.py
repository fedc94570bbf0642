"""Desktop integration: launcher, AppStream metainfo, icons, window icon, bundled examples."""

import configparser
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from arfl_studio.bundled import APP_ID, ICON_SIZES, example_config, example_names, icon_path, resolve_config
from arfl_studio.desktop_entry import desktop_file_text, exec_quote, install_desktop_entry, metainfo_text

ROOT = Path(__file__).resolve().parents[2]


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_checked_in_launcher_and_metainfo_are_the_generated_ones():
    assert (ROOT / "packaging" / f"{APP_ID}.desktop").read_text() == desktop_file_text()
    assert (ROOT / "packaging" / f"{APP_ID}.metainfo.xml").read_text() == metainfo_text()


def test_launcher_is_a_valid_desktop_entry():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read_string(desktop_file_text(exec_quote("/opt/arfl studio/arfl-studio")))
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Name"] == "ARFL Studio"
    assert entry["Icon"] == "arfl-studio" and entry["Categories"].endswith(";")
    # a file manager's "Open with ARFL Studio" passes DICOM files (and folders) as %F
    assert entry["Exec"] == '"/opt/arfl studio/arfl-studio" %F'
    assert "application/dicom" in entry["MimeType"].split(";")


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli is not installed")
def test_metainfo_passes_appstream_validation(tmp_path):
    path = tmp_path / f"{APP_ID}.metainfo.xml"
    path.write_text(metainfo_text())
    result = subprocess.run(["appstreamcli", "validate", "--no-net", "--explain", str(path)], capture_output=True, text=True)
    assert "E:" not in result.stdout, result.stdout  # errors; warnings/pedantic notes are allowed


def test_icons_exist_at_every_size_and_in_every_format():
    for size in ICON_SIZES:
        assert _png_size(icon_path(size).read_bytes()) == (size, size)
    icons = icon_path().parent
    assert (icons / "arfl-studio.ico").read_bytes()[:4] == b"\x00\x00\x01\x00"  # ICO header
    assert (icons / "arfl-studio.icns").read_bytes()[:4] == b"icns"
    assert icon_path().read_text().lstrip().startswith("<?xml")


def test_per_user_install_writes_launcher_metainfo_and_icons(tmp_path):
    written = install_desktop_entry(tmp_path)
    launcher = tmp_path / "applications" / f"{APP_ID}.desktop"
    assert launcher in written and "Exec=" in launcher.read_text()
    assert (tmp_path / "metainfo" / f"{APP_ID}.metainfo.xml").is_file()
    for size in ICON_SIZES:
        png = tmp_path / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "arfl-studio.png"
        assert _png_size(png.read_bytes()) == (size, size)
    assert (tmp_path / "icons" / "hicolor" / "scalable" / "apps" / "arfl-studio.svg").is_file()


def test_install_desktop_entry_flag_uses_the_xdg_data_home(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "arfl_studio", "--install-desktop-entry"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    launcher = tmp_path / "applications" / f"{APP_ID}.desktop"
    assert launcher.is_file() and "installed the launcher" in result.stdout


def test_examples_are_found_by_name(tmp_path, monkeypatch):
    assert {"demo_tiny", "cmmd_table3"} <= set(example_names())
    assert resolve_config("demo_tiny") == example_config("demo_tiny.toml")
    monkeypatch.chdir(tmp_path)
    own = tmp_path / "demo_tiny.toml"
    own.write_text("name = 'mine'\n")
    assert resolve_config("demo_tiny.toml") == Path("demo_tiny.toml")  # a user's file wins over the example
    with pytest.raises(FileNotFoundError, match="demo_tiny"):
        resolve_config("demo_tyni")


def test_window_icon_and_version_are_set():
    from arfl_studio import __version__
    from arfl_studio.gui.app import make_app

    qapp = make_app([])

    assert qapp.applicationVersion() == __version__
    assert qapp.desktopFileName() == APP_ID
    assert max(s.width() for s in qapp.windowIcon().availableSizes()) >= 256
