"""Dataset layouts (CMMD, folder + labels CSV, folder-per-class) and the header scan.

``scan_dataset`` walks the tree recursively (folder names are not trusted), reads
headers only, and never stops on a bad file: each one is listed in ``rejected``
with a one-line reason. Images whose breast has no label go to ``unlabeled``;
label rows with no image go to ``labels_without_images``.

Only pseudonymous patient IDs (the dataset's own ID column / PatientID) are kept;
PatientName, birth date and other PHI are never read into the results.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from arfl_studio.data.dicom import HeaderInfo, MammogramReadError, read_header

LAYOUTS = ("auto", "cmmd", "csv", "folders")
LABEL_NAMES = {0: "benign", 1: "malignant"}
CMMD_COLUMNS = ("ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype")
CMMD_TABLE_NAMES = ("CMMD_clinicaldata_revision.xlsx", "CMMD_clinicaldata_revision.csv")

# Files never tried as images (tables, notes, our own outputs).
_SKIP_SUFFIXES = {
    ".xlsx", ".xls", ".csv", ".tsv", ".json", ".jsonl", ".txt", ".md", ".html", ".htm", ".xml",
    ".pdf", ".py", ".zip", ".gz", ".tar", ".npy", ".npz", ".toml", ".log", ".db", ".sqlite", ".lock",
}
_SKIP_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}

_LABEL_WORDS = {
    "0": 0, "1": 1, "benign": 0, "malignant": 1, "b": 0, "m": 1, "negative": 0, "positive": 1,
    "neg": 0, "pos": 1, "false": 0, "true": 1, "normal": 0, "cancer": 1,
}


class LayoutError(ValueError):
    """The dataset layout or labels file cannot be used; the message says why."""


@dataclass
class ImageRecord:
    path: Path  # absolute
    rel_path: str  # relative to the scanned root, '/'-separated
    patient_id: str
    laterality: str | None
    view: str | None
    label: int  # 0 benign, 1 malignant

    def to_json(self) -> dict:
        return {
            "path": self.rel_path,
            "patient_id": self.patient_id,
            "laterality": self.laterality,
            "view": self.view,
            "label": self.label,
        }


@dataclass
class ScanResult:
    root: Path
    layout: str
    images: list[ImageRecord] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (rel_path, reason)
    unlabeled: list[str] = field(default_factory=list)  # rel_paths
    labels_without_images: list[tuple[str, str | None]] = field(default_factory=list)  # (patient, side)
    files_seen: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def patients(self) -> list[str]:
        return sorted({r.patient_id for r in self.images})

    def summary(self) -> dict:
        return {
            "layout": self.layout,
            "files": self.files_seen,
            "images": len(self.images),
            "patients": len(self.patients),
            "by_label": {LABEL_NAMES[k]: v for k, v in sorted(Counter(r.label for r in self.images).items())},
            "by_view": dict(sorted(Counter(r.view or "unknown" for r in self.images).items())),
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
            "unlabeled": len(self.unlabeled),
            "labels_without_images": len(self.labels_without_images),
            "cancelled": self.cancelled,
        }

    def to_json(self) -> dict:
        doc = self.summary()
        return {
            "root": str(self.root),
            "layout": self.layout,
            "cancelled": self.cancelled,
            "seconds": round(self.seconds, 3),
            "files": self.files_seen,
            "patients": doc["patients"],
            "counts": {
                "images": doc["images"],
                "patients": doc["patients"],
                "by_label": doc["by_label"],
                "by_view": doc["by_view"],
                "by_laterality": doc["by_laterality"],
                "patients_by_label": doc["patients_by_label"],
                "rejected": doc["rejected"],
                "unlabeled": doc["unlabeled"],
                "labels_without_images": doc["labels_without_images"],
            },
            "images": [r.to_json() for r in self.images],
            "rejected": [{"path": p, "reason": why} for p, why in self.rejected],
            "unlabeled": list(self.unlabeled),
            "labels_without_images": [{"patient_id": p, "side": s} for p, s in self.labels_without_images],
        }


# ---------------------------------------------------------------- label tables


def parse_label(value: object) -> int | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    return _LABEL_WORDS.get(text)


def _read_table(path: Path) -> list[dict[str, object]]:
    """Rows of an xlsx (first sheet) or CSV file as dicts keyed by the header row."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        try:
            from openpyxl import load_workbook

            book = load_workbook(path, read_only=True, data_only=True)
        except Exception as err:
            raise LayoutError(f"cannot read {path.name}: {err}") from None
        try:
            rows = book.worksheets[0].iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                return []
            names = [str(h).strip() if h is not None else "" for h in header]
            return [dict(zip(names, row)) for row in rows if any(v is not None for v in row)]
        finally:
            book.close()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(4096)
            handle.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            reader = csv.DictReader(handle, dialect=dialect)
            if reader.fieldnames:
                reader.fieldnames = [f.strip() for f in reader.fieldnames]
            return [row for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
    except (OSError, UnicodeDecodeError) as err:
        raise LayoutError(f"cannot read {path.name}: {err}") from None


def _table_columns(path: Path) -> set[str]:
    rows = _read_table(path)
    return set(rows[0].keys()) if rows else set()


def read_cmmd_labels(path: str | os.PathLike) -> dict[tuple[str, str], int]:
    """(ID1, LeftRight) -> 0/1 from the CMMD clinical table (xlsx or CSV with the same columns).

    A patient may have one row per breast with different labels. If the same breast
    appears twice with different labels, malignant wins (the conservative choice).
    """
    path = Path(path)
    rows = _read_table(path)
    if not rows or not {"ID1", "LeftRight", "classification"} <= set(rows[0]):
        raise LayoutError(f"{path.name} lacks the CMMD columns ID1, LeftRight, classification")
    labels: dict[tuple[str, str], int] = {}
    for row in rows:
        pid = str(row.get("ID1") or "").strip()
        side = str(row.get("LeftRight") or "").strip().upper()[:1]
        label = parse_label(row.get("classification"))
        if not pid or side not in ("L", "R") or label is None:
            continue
        labels[(pid, side)] = max(label, labels.get((pid, side), 0))
    return labels


# ---------------------------------------------------------------- walking


def iter_candidate_files(root: Path, skip: Iterable[Path] = ()) -> list[Path]:
    """Every file under root that could be a DICOM image (any or no extension), sorted."""
    skip_set = {Path(p).resolve() for p in skip}
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in sorted(filenames):
            if name.startswith(".") or name in _SKIP_NAMES:
                continue
            if Path(name).suffix.lower() in _SKIP_SUFFIXES:
                continue
            path = Path(dirpath) / name
            if skip_set and path.resolve() in skip_set:
                continue
            found.append(path)
    return found


def _header_job(path: str) -> tuple[str, HeaderInfo | None, str | None]:
    try:
        return path, read_header(path), None
    except MammogramReadError as err:
        return path, None, str(err)
    except Exception as err:  # never let one file stop a scan
        return path, None, f"unreadable: {type(err).__name__}"


def read_headers(
    paths: list[Path],
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[tuple[str, HeaderInfo | None, str | None]], bool]:
    """Header-only reads, serial or in a spawn process pool; returns (results, cancelled)."""
    total = len(paths)
    results: list[tuple[str, HeaderInfo | None, str | None]] = []
    if progress:
        progress(0, total)
    if workers <= 1 or total < 2 * max(workers, 1):
        for i, path in enumerate(paths):
            if cancel is not None and cancel.is_set():
                return results, True
            results.append(_header_job(str(path)))
            if progress:
                progress(i + 1, total)
        return results, False
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunk = max(1, min(64, total // (workers * 8) or 1))
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        iterator = pool.map(_header_job, [str(p) for p in paths], chunksize=chunk)
        for i, item in enumerate(iterator):
            results.append(item)
            if progress:
                progress(i + 1, total)
            if cancel is not None and cancel.is_set():
                pool.shutdown(wait=True, cancel_futures=True)
                return results, True
    return results, False


# ---------------------------------------------------------------- detection


def _find_cmmd_table(root: Path) -> Path | None:
    for name in CMMD_TABLE_NAMES:
        for base in (root, root.parent):
            if (base / name).is_file():
                return base / name
    for depth_glob in ("*", "*/*"):
        for path in sorted(root.glob(depth_glob)):
            if path.suffix.lower() in (".xlsx", ".csv") and path.is_file():
                try:
                    if {"ID1", "LeftRight", "classification"} <= _table_columns(path):
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


def detect_layout(root: str | os.PathLike, labels: str | os.PathLike | None = None) -> tuple[str, Path | None]:
    """('cmmd'|'csv'|'folders', labels file or None); raises LayoutError when nothing fits."""
    root = Path(root)
    if labels is not None:
        labels = Path(labels)
        columns = _table_columns(labels)
        if {"ID1", "LeftRight", "classification"} <= columns:
            return "cmmd", labels
        return "csv", labels
    table = _find_cmmd_table(root)
    if table is not None:
        return "cmmd", table
    for name in ("labels.csv", "labels.tsv"):
        if (root / name).is_file():
            return "csv", root / name
    subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    if subdirs & {"benign", "malignant"}:
        return "folders", None
    raise LayoutError(
        f"cannot tell the layout of {root}: no CMMD clinical table ({CMMD_TABLE_NAMES[0]}), "
        "no labels.csv and no benign/ or malignant/ folders; pass --labels FILE or --layout"
    )


# ---------------------------------------------------------------- scan


def _rel(root: Path, path: str | Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


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
) -> ScanResult:
    """Scan a dataset folder: which images are usable, their labels, and what is wrong.

    ``layout`` is "auto" (detect), "cmmd", "csv" or "folders". ``labels`` is the
    CMMD clinical table (xlsx/CSV) or the labels CSV. ``progress(done, total)`` is
    called after each file; setting ``cancel`` stops early with ``cancelled=True``.
    """
    start = time.perf_counter()
    root = Path(root).resolve()
    if not root.is_dir():
        raise LayoutError(f"not a folder: {root}")
    if layout not in LAYOUTS:
        raise LayoutError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    labels_path = Path(labels).resolve() if labels is not None else None
    if labels_path is not None and not labels_path.is_file():
        raise LayoutError(f"labels file not found: {labels_path}")
    if layout == "auto":
        layout, labels_path = detect_layout(root, labels_path)
    elif layout == "cmmd" and labels_path is None:
        labels_path = _find_cmmd_table(root)
        if labels_path is None:
            raise LayoutError(f"no CMMD clinical table ({CMMD_TABLE_NAMES[0]}) found; pass --labels FILE")
    elif layout == "csv" and labels_path is None:
        if (root / "labels.csv").is_file():
            labels_path = root / "labels.csv"
        else:
            raise LayoutError("the csv layout needs a labels CSV (--labels FILE)")

    result = ScanResult(root=root, layout=layout)
    csv_rows: dict[str, tuple[str | None, int | None]] = {}
    cmmd_labels: dict[tuple[str, str], int] = {}
    if layout == "cmmd":
        cmmd_labels = read_cmmd_labels(labels_path)
    elif layout == "csv":
        rows = _read_table(labels_path)
        if not rows or path_column not in rows[0] or label_column not in rows[0]:
            raise LayoutError(
                f"{labels_path.name} needs columns {path_column!r} and {label_column!r} "
                f"(found {', '.join(sorted(rows[0])) if rows else 'none'})"
            )
        for row in rows:
            raw = str(row.get(path_column) or "").strip()
            if not raw:
                continue
            full = Path(raw) if Path(raw).is_absolute() else (labels_path.parent / raw)
            if not full.exists() and not Path(raw).is_absolute():
                full = root / raw
            pid = str(row.get(patient_column) or "").strip() or None
            csv_rows[_rel(root, full.resolve())] = (pid, parse_label(row.get(label_column)))

    files = iter_candidate_files(root, skip=[labels_path] if labels_path else ())
    result.files_seen = len(files)
    headers, result.cancelled = read_headers(files, workers=workers, progress=progress, cancel=cancel)

    seen_breasts: set[tuple[str, str]] = set()
    seen_csv: set[str] = set()
    for path, info, reason in headers:
        rel = _rel(root, path)
        if info is None:
            result.rejected.append((rel, reason or "unreadable"))
            continue
        label: int | None = None
        patient = info.patient_id
        if layout == "cmmd":
            if patient and info.laterality:
                seen_breasts.add((patient, info.laterality))
                label = cmmd_labels.get((patient, info.laterality))
        elif layout == "csv":
            if rel in csv_rows:
                seen_csv.add(rel)
                csv_pid, label = csv_rows[rel]
                patient = csv_pid or patient
        else:
            label = _class_folder_label(Path(rel))
        if label is None:
            result.unlabeled.append(rel)
            continue
        if not patient:
            patient = Path(rel).parent.as_posix() or Path(rel).stem
        result.images.append(
            ImageRecord(
                path=Path(path), rel_path=rel, patient_id=patient, laterality=info.laterality,
                view=info.view, label=int(label),
            )
        )
    if not result.cancelled:
        if layout == "cmmd":
            result.labels_without_images = sorted(k for k in cmmd_labels if k not in seen_breasts)
        elif layout == "csv":
            result.labels_without_images = sorted(
                (pid or Path(rel).stem, None) for rel, (pid, _) in csv_rows.items() if rel not in seen_csv
            )
    result.seconds = time.perf_counter() - start
    return result
