"""What a scan found, as the Dataset pane and the status bar say it (Qt-free).

One function gives the counts so the summary, the list tabs and the status bar never
disagree: rejected files (could not be used) and unlabeled images (usable, but no
label for their breast) are counted apart, and so are label rows without images.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult

# Rejection categories, in the order they are listed; matched on the one-line reason.
CATEGORIES = (
    ("FOR PROCESSING", ("for processing",)),
    ("not a mammogram", ("not a mammogram",)),
    ("multi-frame", ("multi-frame", "multiframe", "frames")),
    ("colour", ("colour", "color", "palette")),
    ("undecodable", ("transfer syntax", "decoder", "decode")),
    ("unreadable", ("unreadable", "not a dicom", "not dicom", "no pixel", "truncated")),
)


def rejection_category(reason: str) -> str:
    text = reason.lower()
    for name, words in CATEGORIES:
        if any(w in text for w in words):
            return name
    return "other"


def rejection_counts(scan: ScanResult, summary: dict[str, Any] | None = None) -> dict[str, int]:
    """{category: files}: the scan's own per-category counts when it gives them, else from the reasons."""
    summary = scan.summary() if summary is None else summary
    for key in ("rejected_by_category", "rejected_by_reason", "rejections"):
        given = summary.get(key)
        if isinstance(given, dict) and sum(int(v) for v in given.values()) == len(scan.rejected):
            return {str(k): int(v) for k, v in given.items() if int(v)}
    counts = Counter(rejection_category(reason) for _path, reason in scan.rejected)
    order = [name for name, _ in CATEGORIES] + ["other"]
    return {name: counts[name] for name in order if counts.get(name)}


def counts(scan: ScanResult) -> dict[str, int]:
    return {
        "images": len(scan.images),
        "patients": len(scan.patients),
        "rejected": len(scan.rejected),
        "unlabeled": len(scan.unlabeled),
        "labels_without_images": len(scan.labels_without_images),
    }


def status_line(scan: ScanResult) -> str:
    """One line for the status bar, with the same numbers as the pane."""
    c = counts(scan)
    line = f"{scan.root}: {c['patients']} patients, {c['images']} images, {c['rejected']} rejected, {c['unlabeled']} unlabeled"
    if c["labels_without_images"]:
        line += f", {c['labels_without_images']} label rows without images"
    return line
