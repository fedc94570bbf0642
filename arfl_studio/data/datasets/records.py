"""What a dataset scan returns: one record per usable image, and the scan's account of the rest.

Only pseudonymous patient IDs (the dataset's own ID column / PatientID) are kept;
PatientName, birth date and other PHI are never read into the results.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from arfl_studio.data.datasets.labels import LABEL_NAMES
from arfl_studio.data.datasets.lesions import Lesion, count_lesions
from arfl_studio.data.datasets.reasons import CATEGORIES, Rejection
from arfl_studio.data.datasets.views import view_family


@dataclass
class ImageRecord:
    path: Path  # absolute
    rel_path: str  # relative to the scanned root, '/'-separated
    patient_id: str
    laterality: str | None
    view: str | None  # exact view: "CC", "MLO", "XCCL", "ML", ...
    label: int  # 0 benign, 1 malignant
    frame: int | None = None  # 1-based frame of a multi-frame file (None: single frame)
    lesions: tuple[Lesion, ...] = ()  # native-pixel lesion marks, when the dataset has them
    split: str | None = None  # the dataset's own split ("train"/"test"), when it has one

    @property
    def view_family(self) -> str | None:
        """ "CC", "MLO" or None: what the model and the four-view layout group by."""
        return view_family(self.view)

    def to_json(self, path: str | None = None, share: Callable[[str], str] | None = None) -> dict[str, Any]:
        """The record as JSON; ``share`` rewrites paths (the image's is ``path``, lesion masks' here)."""
        doc: dict[str, Any] = {
            "path": path if path is not None else self.rel_path,
            "patient_id": self.patient_id,
            "laterality": self.laterality,
            "view": self.view,
            "view_family": self.view_family,
            "label": self.label,
        }
        if self.frame is not None:
            doc["frame"] = self.frame
        if self.split is not None:
            doc["split"] = self.split
        if self.lesions:
            doc["lesions"] = [les.to_dict() for les in self.lesions]
            for les in doc["lesions"]:
                if share is not None and "mask" in les:
                    les["mask"] = share(les["mask"])
        return doc


@dataclass
class ScanResult:
    root: Path
    layout: str
    images: list[ImageRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # each unpacks as (rel_path, reason); .category
    unlabeled: list[str] = field(default_factory=list)  # rel_paths
    labels_without_images: list[tuple[str, str | None]] = field(default_factory=list)  # (patient, side)
    lesion_problems: list[str] = field(default_factory=list)  # unreadable lesion rows, rows with no image
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, why): readable, not a training image
    label_rule: str = ""  # how the labels were derived, in words
    notes: list[str] = field(default_factory=list)  # dataset traps found, policies applied
    files_seen: int = 0
    headers_cached: int = 0  # header reads taken from the scan cache (unchanged files of an earlier scan)
    headers_read: int = 0  # headers read from the files by this scan
    seconds: float = 0.0
    cancelled: bool = False
    verified: bool = False  # every image in ``images`` was decoded once
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.images})

    def rejected_by_category(self) -> dict[str, int]:
        """Every category of ``reasons.CATEGORIES`` (zeros included), in that order."""
        counts = Counter(getattr(r, "category", "unreadable") for r in self.rejected)
        return {name: counts.get(name, 0) for name in CATEGORIES}

    def summary(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "files": self.files_seen,
            "images": len(self.images),
            "patients": len(self.patients),
            "by_label": {LABEL_NAMES[k]: v for k, v in sorted(Counter(r.label for r in self.images).items())},
            "by_view": dict(sorted(Counter(r.view or "unknown" for r in self.images).items())),
            "by_view_family": dict(sorted(Counter(r.view_family or "other" for r in self.images).items())),
            "by_laterality": dict(sorted(Counter(r.laterality or "unknown" for r in self.images).items())),
            "patients_by_label": {
                LABEL_NAMES[k]: v
                for k, v in sorted(Counter(max(r.label for r in self.images if r.patient_id == p) for p in self.patients).items())
            },
            "rejected": len(self.rejected),
            "rejected_by_category": self.rejected_by_category(),
            "unlabeled": len(self.unlabeled),
            "labels_without_images": len(self.labels_without_images),
            "label_rule": self.label_rule,
            "excluded": len(self.excluded),
            "excluded_by_reason": dict(sorted(Counter(why.split(":")[0] for _p, why in self.excluded).items())),
            "notes": list(self.notes),
            "files_per_second": round(self.files_seen / self.seconds, 1) if self.seconds > 0 else None,
            "headers_from_cache": self.headers_cached,
            "headers_read": self.headers_read,
            "lesions": count_lesions(self.images),
            "lesion_problems": len(self.lesion_problems),
            "verified": self.verified,
            "cancelled": self.cancelled,
        }

    def to_json(self, *, shareable_paths: bool = False, key: bytes | None = None) -> dict[str, Any]:
        """The scan as JSON; ``shareable_paths`` hashes date/UID path components (``shareable``)."""
        doc = self.summary()
        share: Callable[[str], str] = _identity
        root = str(self.root)
        if shareable_paths:
            from arfl_studio.data.dicom.shareable import default_key, shareable_path

            key = default_key() if key is None else key
            keep = frozenset(self.patients)
            share = lambda p: shareable_path(p, key=key, keep=keep)  # noqa: E731
            root = shareable_path(self.root.name, key=key)
        return {
            "root": root,
            "layout": self.layout,
            "cancelled": self.cancelled,
            "verified": self.verified,
            "shareable_paths": shareable_paths,
            "options": dict(self.options),
            "seconds": round(self.seconds, 3),
            "files": self.files_seen,
            "files_per_second": doc["files_per_second"],
            "headers_from_cache": self.headers_cached,
            "headers_read": self.headers_read,
            "patients": doc["patients"],
            "counts": {
                key_: doc[key_]
                for key_ in (
                    "images",
                    "patients",
                    "by_label",
                    "by_view",
                    "by_view_family",
                    "by_laterality",
                    "patients_by_label",
                    "rejected",
                    "rejected_by_category",
                    "unlabeled",
                    "labels_without_images",
                    "lesions",
                    "excluded",
                    "excluded_by_reason",
                )
            },
            "label_rule": self.label_rule,
            "notes": list(self.notes),
            "excluded": [{"path": share(p), "reason": why} for p, why in self.excluded],
            "images": [r.to_json(share(r.rel_path), share) for r in self.images],
            "rejected": [
                dict(r.to_json(), path=share(r.path))
                if isinstance(r, Rejection)
                else {"path": share(r[0]), "reason": r[1], "category": "unreadable"}
                for r in self.rejected
            ],
            "unlabeled": [share(p) for p in self.unlabeled],
            "labels_without_images": [{"patient_id": p, "side": s} for p, s in self.labels_without_images],
            "lesion_problems": list(self.lesion_problems),
        }


def _identity(path: str) -> str:
    return path
