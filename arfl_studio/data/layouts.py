"""Dataset layouts (CMMD, folder + labels CSV, folder-per-class) and the dataset scan.

``scan_dataset`` walks the tree recursively (folder names are not trusted; links are not
followed, see ``walk``), reads headers only, and never stops on a bad file: each one is listed
in ``rejected`` with a one-line reason and a category (``reasons.CATEGORIES``). Images whose
breast has no label go to ``unlabeled``; label rows with no image go to
``labels_without_images``. ``verify=True`` (or ``verify_scan`` afterwards) decodes every usable
image in parallel and moves the ones that fail to ``rejected``.

Only pseudonymous patient IDs (the dataset's own ID column / PatientID) are kept;
PatientName, birth date and other PHI are never read into the results.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from arfl_studio.data.file_jobs import read_headers, verify_files
from arfl_studio.data.labels import (
    CMMD_COLUMNS,
    CMMD_TABLE_NAMES,
    LABEL_NAMES,
    LabelProblem,
    LayoutError,
    looks_like_cmmd,
    parse_label,
    read_cmmd_labels,
    read_csv_labels,
    table_columns,
)
from arfl_studio.data.reasons import CATEGORIES, Rejection
from arfl_studio.data.views import view_family
from arfl_studio.data.walk import walk_dataset

__all__ = [
    "CMMD_COLUMNS", "CMMD_TABLE_NAMES", "ImageRecord", "LABEL_NAMES", "LAYOUTS", "LayoutError", "ScanResult",
    "detect_layout", "parse_label", "read_cmmd_labels", "scan_dataset", "verify_scan",
]

LAYOUTS = ("auto", "cmmd", "csv", "folders")


@dataclass
class ImageRecord:
    path: Path  # absolute
    rel_path: str  # relative to the scanned root, '/'-separated
    patient_id: str
    laterality: str | None
    view: str | None  # exact view: "CC", "MLO", "XCCL", "ML", ...
    label: int  # 0 benign, 1 malignant
    frame: int | None = None  # 1-based frame of a multi-frame file (None: single frame)

    @property
    def view_family(self) -> str | None:
        """"CC", "MLO" or None: what the model and the four-view layout group by."""
        return view_family(self.view)

    def to_json(self, path: str | None = None) -> dict:
        doc = {
            "path": path if path is not None else self.rel_path,
            "patient_id": self.patient_id,
            "laterality": self.laterality,
            "view": self.view,
            "view_family": self.view_family,
            "label": self.label,
        }
        if self.frame is not None:
            doc["frame"] = self.frame
        return doc


@dataclass
class ScanResult:
    root: Path
    layout: str
    images: list[ImageRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # each unpacks as (rel_path, reason); .category
    unlabeled: list[str] = field(default_factory=list)  # rel_paths
    labels_without_images: list[tuple[str, str | None]] = field(default_factory=list)  # (patient, side)
    files_seen: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    verified: bool = False  # every image in ``images`` was decoded once
    options: dict = field(default_factory=dict)

    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.images})

    def rejected_by_category(self) -> dict[str, int]:
        """Every category of ``reasons.CATEGORIES`` (zeros included), in that order."""
        counts = Counter(getattr(r, "category", "unreadable") for r in self.rejected)
        return {name: counts.get(name, 0) for name in CATEGORIES}

    def summary(self) -> dict:
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
                for k, v in sorted(
                    Counter(
                        max(r.label for r in self.images if r.patient_id == p) for p in self.patients
                    ).items()
                )
            },
            "rejected": len(self.rejected),
            "rejected_by_category": self.rejected_by_category(),
            "unlabeled": len(self.unlabeled),
            "labels_without_images": len(self.labels_without_images),
            "verified": self.verified,
            "cancelled": self.cancelled,
        }

    def to_json(self, *, shareable_paths: bool = False, key: bytes | None = None) -> dict:
        """The scan as JSON; ``shareable_paths`` hashes date/UID path components (``shareable``)."""
        doc = self.summary()
        share = _identity
        root = str(self.root)
        if shareable_paths:
            from arfl_studio.data.shareable import default_key, shareable_path

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
            "patients": doc["patients"],
            "counts": {
                key_: doc[key_]
                for key_ in ("images", "patients", "by_label", "by_view", "by_view_family", "by_laterality",
                             "patients_by_label", "rejected", "rejected_by_category", "unlabeled",
                             "labels_without_images")
            },
            "images": [r.to_json(share(r.rel_path)) for r in self.images],
            "rejected": [dict(r.to_json(), path=share(r.path)) if isinstance(r, Rejection)
                         else {"path": share(r[0]), "reason": r[1], "category": "unreadable"} for r in self.rejected],
            "unlabeled": [share(p) for p in self.unlabeled],
            "labels_without_images": [{"patient_id": p, "side": s} for p, s in self.labels_without_images],
        }


def _identity(path: str) -> str:
    return path


# ---------------------------------------------------------------- detection


def _find_cmmd_table(root: Path) -> Path | None:
    for name in CMMD_TABLE_NAMES:
        for base in (root, root.parent):
            if (base / name).is_file():
                return base / name
    for depth_glob in ("*", "*/*"):
        try:
            candidates = sorted(root.glob(depth_glob))
        except OSError:
            continue
        for path in candidates:
            if path.suffix.lower() in (".xlsx", ".csv") and not path.is_symlink() and path.is_file():
                try:
                    if looks_like_cmmd(table_columns(path)):
                        return path
                except LayoutError:
                    continue
    return None


def _class_folder_label(rel: Path) -> int | None:
    for part in rel.parts[:-1]:
        label = {"benign": 0, "malignant": 1}.get(part.lower())
        if label is not None:
            return label
    return None


def detect_layout(root: str | os.PathLike, labels: str | os.PathLike | None = None,
                  path_column: str = "path") -> tuple[str, Path | None]:
    """('cmmd'|'csv'|'folders', labels file or None); raises LayoutError when nothing fits."""
    root = Path(root)
    if labels is not None:
        labels = Path(labels)
        return ("cmmd" if looks_like_cmmd(table_columns(labels), path_column) else "csv"), labels
    table = _find_cmmd_table(root)
    if table is not None:
        return "cmmd", table
    for name in ("labels.csv", "labels.tsv"):
        if (root / name).is_file():
            return "csv", root / name
    try:
        subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir() and not p.is_symlink()}
    except OSError:
        subdirs = set()
    if subdirs & {"benign", "malignant"}:
        return "folders", None
    raise LayoutError(
        f"cannot tell the layout of {root}: no CMMD clinical table ({CMMD_TABLE_NAMES[0]}), "
        "no labels.csv and no benign/ or malignant/ folders; pass --labels FILE or --layout"
    )


# ---------------------------------------------------------------- scan


def _rel(root: Path, path: str | Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _dataset_root(root: str | os.PathLike) -> Path:
    """The real path of a readable dataset folder, else LayoutError with a one-line reason."""
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(root))))
    if not real.is_dir():
        raise LayoutError(f"not a folder: {root}")
    try:
        with os.scandir(real):
            pass
    except OSError as err:
        raise LayoutError(f"cannot read the dataset folder {real}: {err.strerror or type(err).__name__}") from None
    return real


def scan_dataset(
    root: str | os.PathLike,
    labels: str | os.PathLike | None = None,
    layout: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    *,
    workers: int = 1,
    path_column: str = "path",
    patient_column: str = "patient",
    label_column: str = "label",
    include_non_mammograms: bool = False,
    include_for_processing: bool = False,
    frame: int | None = None,
    verify: bool = False,
) -> ScanResult:
    """Scan a dataset folder: which images are usable, their labels, and what is wrong.

    ``layout`` is "auto" (detect), "cmmd", "csv" or "folders". ``labels`` is the CMMD clinical
    table (xlsx/CSV) or the labels CSV. ``progress(done, total)`` is called after each file (and,
    with ``verify``, again from 0 for the decode pass); setting ``cancel`` stops early with
    ``cancelled=True``. By default non-mammograms, FOR PROCESSING images and multi-frame images
    are rejected with their reason; ``include_*`` keeps the first two, ``frame`` (1-based) takes
    that frame of multi-frame files. ``verify`` decodes every usable image (slower; see
    ``verify_scan``).
    """
    start = time.perf_counter()
    root = _dataset_root(root)
    if layout not in LAYOUTS:
        raise LayoutError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 1):
        raise LayoutError(f"frame must be a whole number from 1 (the first frame), not {frame!r}")
    labels_path = Path(os.path.realpath(os.path.expanduser(os.fspath(labels)))) if labels is not None else None
    if labels_path is not None and not labels_path.is_file():
        raise LayoutError(f"labels file not found: {labels_path}")
    if layout == "auto":
        layout, labels_path = detect_layout(root, labels_path, path_column)
    elif layout == "cmmd" and labels_path is None:
        labels_path = _find_cmmd_table(root)
        if labels_path is None:
            raise LayoutError(f"no CMMD clinical table ({CMMD_TABLE_NAMES[0]}) found; pass --labels FILE")
    elif layout == "csv" and labels_path is None:
        if (root / "labels.csv").is_file():
            labels_path = root / "labels.csv"
        else:
            raise LayoutError("the csv layout needs a labels CSV (--labels FILE)")

    result = ScanResult(root=root, layout=layout, options={
        "include_non_mammograms": include_non_mammograms, "include_for_processing": include_for_processing,
        "frame": frame, "verify": verify,
    })
    csv_rows: dict[str, tuple[str | None, int | None]] = {}
    csv_problems: dict[str, LabelProblem] = {}
    cmmd_labels: dict[tuple[str, str], int] = {}
    cmmd_problems: dict[tuple[str, str], LabelProblem] = {}
    if layout == "cmmd":
        cmmd_labels, cmmd_problems = read_cmmd_labels(labels_path)
    elif layout == "csv":
        csv_rows, csv_problems = read_csv_labels(
            labels_path, root, path_column=path_column, patient_column=patient_column, label_column=label_column)

    files, skipped = walk_dataset(root, skip=[labels_path] if labels_path else ())
    result.rejected.extend(skipped)
    result.files_seen = len(files) + len(skipped)
    headers, result.cancelled = read_headers(
        files, workers=workers, progress=progress, cancel=cancel, include_non_mammograms=include_non_mammograms,
        include_for_processing=include_for_processing, frame=frame)

    seen_breasts: set[tuple[str, str]] = set()
    seen_csv: set[str] = set()
    for path, info, reason, category in headers:
        rel = _rel(root, path)
        if info is None:
            result.rejected.append(Rejection(rel, reason or "unreadable", category or "unreadable"))
            continue
        label: int | None = None
        problem: LabelProblem | None = None
        patient = info.patient_id
        if layout == "cmmd":
            if patient and info.laterality:
                seen_breasts.add((patient, info.laterality))
                label = cmmd_labels.get((patient, info.laterality))
                problem = cmmd_problems.get((patient, info.laterality))
        elif layout == "csv":
            if rel in csv_rows:
                seen_csv.add(rel)
                csv_pid, label = csv_rows[rel]
                problem = csv_problems.get(rel)
                patient = csv_pid or patient
        else:
            label = _class_folder_label(Path(rel))
        if problem is not None:
            result.rejected.append(Rejection(rel, problem.reason, problem.category))
            continue
        if label is None:
            result.unlabeled.append(rel)
            continue
        if not patient:
            patient = Path(rel).parent.as_posix() or Path(rel).stem
        result.images.append(
            ImageRecord(
                path=Path(path), rel_path=rel, patient_id=patient, laterality=info.laterality,
                view=info.view, label=int(label), frame=frame if info.frames > 1 else None,
            )
        )
    if not result.cancelled:
        if layout == "cmmd":
            result.labels_without_images = sorted(
                k for k in set(cmmd_labels) | set(cmmd_problems) if k not in seen_breasts)
        elif layout == "csv":
            result.labels_without_images = sorted(
                (pid or Path(rel).stem, None) for rel, (pid, _) in csv_rows.items() if rel not in seen_csv
            )
    if verify and not result.cancelled:
        verify_scan(result, workers=workers, progress=progress, cancel=cancel)
    result.seconds = time.perf_counter() - start
    return result


def verify_scan(result: ScanResult, workers: int = 1, progress: Callable[[int, int], None] | None = None,
                cancel: threading.Event | None = None) -> ScanResult:
    """Decode every image of a scan (spawn process pool); failures move to ``rejected``.

    Usable from the GUI's worker thread after a header scan. On cancel the images not yet
    decoded stay in ``images`` and ``verified`` stays False.
    """
    frames = {r.rel_path: r.frame for r in result.images}
    by_frame: dict[int | None, list[ImageRecord]] = {}
    for record in result.images:
        by_frame.setdefault(frames[record.rel_path], []).append(record)
    failed: dict[str, tuple[str, str]] = {}
    cancelled = False
    for frame, records in by_frame.items():
        outcomes, cancelled = verify_files([r.path for r in records], workers=workers, progress=progress,
                                           cancel=cancel, frame=frame)
        by_path = {str(r.path): r for r in records}
        for path, reason, category in outcomes:  # matched by path: a cancelled pass returns a subset
            if reason is not None:
                failed[by_path[path].rel_path] = (reason, category or "undecodable")
        if cancelled:
            break
    result.images = [r for r in result.images if r.rel_path not in failed]
    result.rejected.extend(Rejection(rel, reason, category) for rel, (reason, category) in sorted(failed.items()))
    result.cancelled = result.cancelled or cancelled
    result.verified = not cancelled
    result.options["verify"] = True
    return result
