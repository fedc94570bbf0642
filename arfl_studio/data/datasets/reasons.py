"""Why a file is not used: a one-line reason and a stable category.

The categories are the keys of ``ScanResult.summary()["rejected_by_category"]`` (always all of
them, zeros included), of ``scan --json`` and of the Dataset pane's Rejected list.
"""

from __future__ import annotations

from typing import Any

CATEGORIES: dict[str, str] = {
    "not_mammogram": "not a mammogram (CT, MR, US, ... or no breast in the header)",
    "for_processing": "FOR PROCESSING image (raw detector data)",
    "multi_frame": "multi-frame image (tomosynthesis, cine) and no frame chosen",
    "colour": "colour or palette-colour image",
    "undecodable": "transfer syntax this installation cannot decode",
    "unreadable": "not a DICOM image, damaged or truncated",
    "non_finite": "NaN or infinite pixel values",
    "too_small": "image smaller than the minimum size",
    "too_large": "more pixels than the limit (ARFL_MAX_PIXELS)",
    "label_conflict": "the labels table disagrees with itself about this image",
    "bad_label": "a label that is neither benign nor malignant",
    "link": "symbolic link skipped (a loop, to itself, or out of the dataset folder)",
    "unreadable_folder": "a folder that cannot be listed",
}

# Smallest image side accepted: below this a mammogram carries no usable tissue detail (a
# 1x1 or 2x2 "image" is a placeholder or a broken export) and resizing it to the model's input
# only invents pixels.
MIN_SIDE = 32

# Most pixels (rows x columns x frames, from the header) decoded for one image, checked before any
# decoding: a full-field mammogram is 10-30 megapixels, a 50-um film scan about 40; a 20000x20000
# "image" (400 MP, 1.6 GB as float32 and minutes to preprocess) is refused with the reason.
# Set the environment variable ARFL_MAX_PIXELS (a whole number) to change it.
DEFAULT_MAX_PIXELS = 100_000_000


def max_pixels() -> int:
    """The pixel-count limit: ARFL_MAX_PIXELS when set to a positive whole number, else the default."""
    import os

    try:
        value = int(os.environ.get("ARFL_MAX_PIXELS", ""))
    except ValueError:
        return DEFAULT_MAX_PIXELS
    return value if value > 0 else DEFAULT_MAX_PIXELS


class MammogramReadError(ValueError):
    """A file that is not a usable mammogram; ``str(err)`` is a one-line reason, ``category`` its kind."""

    def __init__(self, reason: str, category: str = "unreadable"):
        super().__init__(reason)
        self.category = category if category in CATEGORIES else "unreadable"


class Rejection(tuple[str, str]):
    """A rejected path: unpacks as ``(path, reason)``; ``.category`` is one of CATEGORIES."""

    category: str

    def __new__(cls, path: str, reason: str, category: str = "unreadable") -> Rejection:
        self = super().__new__(cls, (path, reason))
        self.category = category if category in CATEGORIES else "unreadable"
        return self

    @property
    def path(self) -> str:
        return self[0]

    @property
    def reason(self) -> str:
        return self[1]

    def __reduce__(self) -> tuple[type[Rejection], tuple[str, str, str]]:  # survives pickling to and from worker processes
        return (Rejection, (self[0], self[1], self.category))

    def to_json(self) -> dict[str, Any]:
        return {"path": self[0], "reason": self[1], "category": self.category}
