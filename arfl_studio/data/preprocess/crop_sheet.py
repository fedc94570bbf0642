"""A contact sheet of crops: each image in native space with its crop box drawn (and, for the
"breast-only" crop, the breast region's outline, what is blanked shaded; lesion marks as circles,
malignant red, others yellow).

Lets a researcher check at a glance that the crop keeps the whole breast (skin line,
nipple, lower MLO) and leaves out labels, edge stripes and background. Matplotlib
with the Agg canvas (no GUI backend); images are shown as stored, so the box is
``Geometry.native_box()``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from arfl_studio.data.dicom.reader import MammogramReadError, read_mammogram

_THUMB = 256  # longest side of a thumbnail, pixels


def _thumbnail(pixels: np.ndarray) -> tuple[np.ndarray, int]:
    step = max(1, int(math.ceil(max(pixels.shape) / _THUMB)))
    return pixels[::step, ::step], step


def crop_boxes(records: Sequence[Any], settings, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """For each record: rel_path, native shape, flip and native crop box (or the error)."""
    from arfl_studio.data.preprocess.transform import compute_geometry

    out = []
    for i, record in enumerate(records):
        entry: dict = {"path": getattr(record, "rel_path", str(record.path))}
        try:
            mammogram = read_mammogram(record.path)
            pixels = mammogram.pixels
            geometry = compute_geometry(pixels, settings, spacing=mammogram.pixel_spacing)
            entry.update(shape=list(geometry.shape), flip=geometry.flip, native_box=list(geometry.native_box()))
            entry["_thumb"] = _thumbnail(pixels)
            if geometry.masked:
                from arfl_studio.data.preprocess.breast_region import breast_region

                entry["_region"] = _thumbnail(breast_region(pixels).astype(np.float32))[0]
            entry["_lesions"] = [
                (les.centre, les.radius, les.pathology) for les in getattr(record, "lesions", ()) if les.centre is not None
            ]
        except MammogramReadError as err:
            entry["error"] = str(err)
        out.append(entry)
        if progress:
            progress(i + 1, len(records))
    return out


def write_contact_sheet(path: str | os.PathLike, boxes: list[dict], columns: int = 6, title: str = "") -> Path:
    """Draw the thumbnails of ``crop_boxes`` with their boxes into a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, Rectangle

    from arfl_studio.atomic import write_bytes

    shown = [b for b in boxes if "_thumb" in b]
    if not shown:
        raise ValueError("no readable image to draw")
    columns = max(1, min(columns, len(shown)))
    rows = int(math.ceil(len(shown) / columns))
    fig = Figure(figsize=(2.2 * columns, 2.8 * rows + (0.4 if title else 0.0)), dpi=100)
    FigureCanvasAgg(fig)
    if title:
        fig.suptitle(title, fontsize=9)
    for k, entry in enumerate(shown):
        ax = fig.add_subplot(rows, columns, k + 1)
        thumb, step = entry["_thumb"]
        ax.imshow(thumb, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        if "_region" in entry:  # blanked in the model input: shaded; the breast's outline in green
            region = entry["_region"]
            ax.imshow(np.ma.masked_where(region > 0.5, np.ones_like(region)), cmap="autumn", alpha=0.35, interpolation="nearest")
            ax.contour(region, levels=[0.5], colors="#34c759", linewidths=0.8)
        for (row, col), radius, pathology in entry.get("_lesions", ()):
            ax.add_patch(
                Circle(
                    (col / step, row / step),
                    max((radius or 0) / step, 2.0),
                    fill=False,
                    linewidth=0.9,
                    edgecolor="#ff3b30" if pathology == "malignant" else "#ffcc00",
                )
            )
        r0, r1, c0, c1 = entry["native_box"]
        # pixel edges: box rows r0..r1-1 span r0-0.5 .. r1-0.5 in native pixel centres
        ax.add_patch(
            Rectangle(
                ((c0 - 0.5) / step, (r0 - 0.5) / step), (c1 - c0) / step, (r1 - r0) / step, fill=False, edgecolor="#ff3b30", linewidth=1.2
            )
        )
        name = entry["path"]
        ax.set_title(name if len(name) <= 28 else "…" + name[-27:], fontsize=6)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return write_bytes(path, buffer.getvalue())


def public(boxes: list[dict]) -> list[dict]:
    """The boxes without the thumbnails (for JSON)."""
    return [{k: v for k, v in b.items() if not k.startswith("_")} for b in boxes]
