"""Render resources/icons/arfl-studio.svg to the PNG sizes, .ico (Windows) and .icns (macOS).

    python packaging/render_icons.py

Run it after editing the SVG; the renderings are checked in so that neither the
wheel nor the frozen build needs an SVG renderer at build time.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from arfl_studio.bundled import ICON_SIZES  # noqa: E402


def render_png(svg: Path, size: int) -> bytes:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    QGuiApplication.instance() or QGuiApplication([])
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    QSvgRenderer(str(svg)).render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data)


def main() -> int:
    from PIL import Image

    icons = ROOT / "resources" / "icons"
    svg = icons / "arfl-studio.svg"
    images = {}
    for size in ICON_SIZES:
        png = render_png(svg, size)
        (icons / f"arfl-studio-{size}.png").write_bytes(png)
        images[size] = Image.open(io.BytesIO(png)).convert("RGBA")
    images[256].save(icons / "arfl-studio.ico", sizes=[(s, s) for s in (16, 24, 32, 48, 64, 128, 256)])
    images[512].save(icons / "arfl-studio.icns")
    print(f"wrote {len(ICON_SIZES)} PNGs, arfl-studio.ico and arfl-studio.icns into {icons}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
