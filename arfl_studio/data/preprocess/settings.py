"""What preprocessing does to an image, as data: ``PreprocessSettings`` (validated, hashed
into the cache keys) and its version. The steps themselves are in ``transform``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from arfl_studio.data.preprocess.crop import CROP_METHODS, DEFAULT_CROP
from arfl_studio.data.preprocess.geometry import FITS

# 2: the "breast" crop became the default and images carry the fit
PREPROCESS_VERSION = 2
INTENSITIES = ("as-read", "breast-percentile")


# What a model input's pixel values are. The decoded image in display units (VOI LUT or
# window applied, MONOCHROME1 inverted, tissue bright) scaled to [0, 1], rescaled inside the
# breast when ``intensity`` says so; the mean/std normalisation is the model's own first layer,
# so it travels with the weights.
PIXEL_VALUES = "display [0, 1] (intensity: as-read, or in-breast percentiles); mean/std in the model's first layer"


class PreprocessSettingError(ValueError):
    """An invalid preprocessing setting; the message names it and what is allowed."""


@dataclass(frozen=True)
class PreprocessSettings:
    orient: bool = True
    crop: str = DEFAULT_CROP  # "breast" | "otsu" | "threshold" | "none"
    size: tuple[int, int] = (224, 224)  # rows, columns
    channels: int = 3  # 1 or 3
    threshold: float = 0.1  # for crop="threshold", in display units [0, 1]
    margin: float = 0.02  # crop margin, fraction of the image size
    fit: str = "stretch"  # "stretch" (the paper) | "pad" (letterbox, aspect ratio kept)
    # "as-read" (display units after the LUTs) | "breast-percentile" (1st/99th in-breast percentiles -> 0/1)
    intensity: str = "as-read"
    # model pixel size in mm (from the DICOM pixel spacing): every breast at one physical scale,
    # centred in ``size`` and shrunk only when it would not fit; None: the crop fills ``size``
    pixel_mm: float | None = None

    def __post_init__(self) -> None:
        size: Any = self.size  # checked here: a caller may pass one number or anything else
        if _is_int(size):
            size = (size, size)
        if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2 or not all(_is_int(s) for s in size):
            raise PreprocessSettingError(f"size must be rows and columns as whole numbers (e.g. [224, 224]), not {self.size!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in size))
        self.validate()

    def validate(self) -> "PreprocessSettings":
        if not isinstance(self.orient, (bool, np.bool_)):
            raise PreprocessSettingError(f"orient must be true or false, not {self.orient!r}")
        if self.crop not in CROP_METHODS:
            raise PreprocessSettingError(f"crop must be one of {', '.join(CROP_METHODS)}, not {self.crop!r}")
        if not all(8 <= s <= 8192 for s in self.size):
            raise PreprocessSettingError(f"size must be (rows, columns), each 8..8192, not {list(self.size)}")
        if not _is_int(self.channels) or self.channels not in (1, 3):
            raise PreprocessSettingError(f"channels must be 1 or 3, not {self.channels!r}")
        for name, low, high, closed in (("threshold", 0.0, 1.0, False), ("margin", 0.0, 0.25, True)):
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
            if not ok or not (low <= value <= high if closed else low <= value < high):
                bracket = "]" if closed else ")"
                raise PreprocessSettingError(f"{name} must be a number in [{low:g}, {high:g}{bracket}, not {value!r}")
        if self.fit not in FITS:
            raise PreprocessSettingError(f"fit must be one of {', '.join(FITS)}, not {self.fit!r}")
        if self.intensity not in INTENSITIES:
            raise PreprocessSettingError(f"intensity must be one of {', '.join(INTENSITIES)}, not {self.intensity!r}")
        if self.pixel_mm is not None:
            number = isinstance(self.pixel_mm, (int, float, np.floating, np.integer)) and not isinstance(self.pixel_mm, bool)
            if not number or not 0.01 <= self.pixel_mm <= 10:
                raise PreprocessSettingError(f"pixel_mm must be a pixel size in mm, 0.01..10, not {self.pixel_mm!r}")
            if self.fit != "pad":
                raise PreprocessSettingError('pixel_mm keeps the aspect ratio: it needs fit = "pad"')
        return self

    def to_dict(self) -> dict:
        d = asdict(self)
        d["size"] = list(self.size)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessSettings":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "size" in known:
            known["size"] = tuple(known["size"]) if not isinstance(known["size"], int) else known["size"]
        return cls(**known)

    def model_input_record(self) -> dict:
        """The whole preprocessing as a model's ``model.json`` records it: these settings,
        what the pixel values mean (:data:`PIXEL_VALUES`) and the pipeline version."""
        return {**self.to_dict(), "pixel_values": PIXEL_VALUES, "version": PREPROCESS_VERSION}

    def geometry_key(self) -> str:
        parts = {"v": PREPROCESS_VERSION, "orient": self.orient, "crop": self.crop, "margin": self.margin}
        if self.crop == "threshold":
            parts["threshold"] = self.threshold
        if self.pixel_mm is not None:  # the geometry holds the scale it gives
            parts["pixel_mm"] = float(self.pixel_mm)
        return _short_hash(parts)

    def image_key(self) -> str:
        parts = {"geometry": self.geometry_key(), "size": list(self.size), "fit": self.fit}
        if self.intensity != "as-read":  # older cache keys stay valid
            parts["intensity"] = self.intensity
        return _short_hash(parts)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]}x{value[1]}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def preprocess_conflicts(recorded: dict, requested: dict) -> list[str]:
    """One phrase per setting ``requested`` asks differently from ``recorded``
    (e.g. "size 128x128 (the model was trained on 224x224)"); keys ``recorded`` lacks are not compared."""
    out = []
    for key, wanted in requested.items():
        if wanted is None or key not in recorded:
            continue
        have = recorded[key]
        same = list(have) == list(wanted) if isinstance(have, (list, tuple)) else have == wanted
        if not same:
            out.append(f"{key} {_shown(wanted)} (the model was trained on {_shown(have)})")
    return out
