"""The viewer's DICOM export (Qt-free worker task): each image on screen, blended with its overlay
as shown, becomes a Secondary Capture beside its source (``data.dicom.secondary_capture``).

The images of one model share a series (the four-view hanging: four instances); the two models
side by side are two series. One image is written to exactly the path given; several get the
path's stem with their view or method (``overlay-RCC.dcm``, ``overlay-B.dcm``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def instance_paths(path: str | Path, labels: list[str]) -> list[Path]:
    """``path`` for one image; ``stem-label.dcm`` beside it for each of several."""
    path = Path(path)
    if len(labels) == 1:
        return [path]
    return [path.with_name(f"{path.stem}-{label}{path.suffix}") for label in labels]


def dicom_export_task(panels: list[dict], path: str, colormap):
    """``panels``: [{"label", "source" (DICOM path), "series" (a key: one series per key),
    "description", "gray", "heat" (callable or None), "opacity", "gray_levels", "invert",
    "heat_levels"}] blended at full resolution and written as Secondary Captures."""

    def task(report, cancel):
        from pydicom.uid import generate_uid

        from arfl_studio.data.dicom.secondary_capture import secondary_capture, write_secondary_capture
        from arfl_studio.evaluation.blend import blend_lut

        lut = np.asarray(colormap, dtype=np.float32)
        series: dict[str, tuple[str, int]] = {}  # key -> (Series Instance UID, Series Number)
        counts: dict[str, int] = {}
        written = []
        for p, target in zip(panels, instance_paths(path, [p["label"] for p in panels])):
            if cancel.is_set():
                return None
            uid, number = series.setdefault(p["series"], (generate_uid(), 900 + len(series)))
            counts[p["series"]] = counts.get(p["series"], 0) + 1
            heat = p["heat"]() if callable(p["heat"]) else p["heat"]
            rgb = blend_lut(p["gray"], heat, lut, p["opacity"], p["heat_levels"], p["gray_levels"], p["invert"])
            ds = secondary_capture(
                p["source"], rgb, p["description"], series_uid=uid, series_number=number, instance_number=counts[p["series"]]
            )
            written.append(str(write_secondary_capture(target, ds)))
        return written

    return task
