"""Label tables: the CMMD clinical table and a labels CSV/xlsx (path, patient, label).

A table that contradicts itself is never resolved silently: the same image listed with two
labels or two patients is dropped with a reason naming the rows (rows are numbered as a
spreadsheet shows them, the header being row 1); rows that agree are fine. A label that is
neither benign nor malignant ("maybe", "2") gets a reason too, instead of passing as unlabeled.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

LABEL_NAMES = {0: "benign", 1: "malignant"}
CMMD_COLUMNS = ("ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype")
CMMD_KEY_COLUMNS = ("ID1", "LeftRight", "classification")
CMMD_TABLE_NAMES = ("CMMD_clinicaldata_revision.xlsx", "CMMD_clinicaldata_revision.csv")

_LABEL_WORDS = {
    "0": 0, "1": 1, "benign": 0, "malignant": 1, "b": 0, "m": 1, "negative": 0, "positive": 1,
    "neg": 0, "pos": 1, "false": 0, "true": 1, "normal": 0, "cancer": 1,
}
ALLOWED_LABELS = "0/1, benign/malignant, b/m, negative/positive, normal/cancer"


class LayoutError(ValueError):
    """The dataset layout or labels file cannot be used; the message says why."""


@dataclass(frozen=True)
class LabelProblem:
    reason: str
    category: str  # "label_conflict" | "bad_label"


def parse_label(value: object) -> int | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    return _LABEL_WORDS.get(text)


def _blank(value: object) -> bool:
    return value is None or not str(value).strip()


def _bad_label(value: object, where: str) -> LabelProblem:
    return LabelProblem(f"label {str(value).strip()!r} ({where}) is not one of {ALLOWED_LABELS}", "bad_label")


def read_table(path: Path) -> list[dict[str, object]]:
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


def table_columns(path: Path) -> set[str]:
    rows = read_table(path)
    return set(rows[0].keys()) if rows else set()


def looks_like_cmmd(columns: set[str], path_column: str = "path") -> bool:
    """A table with CMMD's own column names and no image path column is meant as CMMD."""
    return path_column not in columns and len(columns & set(CMMD_KEY_COLUMNS)) >= 2


def read_cmmd_labels(path: str | os.PathLike) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], LabelProblem]]:
    """(ID1, LeftRight) -> 0/1 from the CMMD clinical table, and breasts whose label is unusable.

    A patient may have one row per breast with different labels. If the same breast appears
    twice with different labels, malignant wins (one breast may hold a benign and a malignant
    finding; the breast is then malignant).
    """
    path = Path(path)
    rows = read_table(path)
    columns = set(rows[0]) if rows else set()
    missing = [c for c in CMMD_KEY_COLUMNS if c not in columns]
    if missing:
        raise LayoutError(
            f"{path.name} lacks the CMMD column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(found {', '.join(sorted(columns)) or 'no columns'})"
        )
    labels: dict[tuple[str, str], int] = {}
    problems: dict[tuple[str, str], LabelProblem] = {}
    for number, row in enumerate(rows, start=2):
        pid = str(row.get("ID1") or "").strip()
        side = str(row.get("LeftRight") or "").strip().upper()[:1]
        if not pid or side not in ("L", "R"):
            continue
        raw = row.get("classification")
        label = parse_label(raw)
        if label is None:
            if not _blank(raw):
                problems[(pid, side)] = _bad_label(raw, f"{path.name} row {number}")
            continue
        labels[(pid, side)] = max(label, labels.get((pid, side), 0))
    for key in labels:
        problems.pop(key, None)  # a usable row for the breast outranks an unusable one
    return labels, problems


def table_rel_path(raw: str, table: Path, root: Path) -> str:
    """A path written in a table, relative to the dataset root ('/'-separated).

    Relative paths resolve against the table's folder, else the dataset root; absolute paths
    are kept. Normalised without following links so a loop in the tree cannot stop the read.
    """
    candidate = Path(raw) if Path(raw).is_absolute() else table.parent / raw
    if not os.path.lexists(candidate) and not Path(raw).is_absolute():
        candidate = root / raw
    full = os.path.normpath(os.path.abspath(candidate))
    try:
        return Path(os.path.relpath(full, root)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(full).as_posix()


def read_csv_labels(
    path: Path, root: Path, *, path_column: str = "path", patient_column: str = "patient", label_column: str = "label",
) -> tuple[dict[str, tuple[str | None, int | None]], dict[str, LabelProblem]]:
    """rel_path -> (patient or None, label or None) from a labels table, and images with a problem.

    Paths resolve as :func:`table_rel_path` says.
    """
    rows = read_table(path)
    columns = set(rows[0]) if rows else set()
    if path_column not in columns or label_column not in columns:
        raise LayoutError(
            f"{path.name} needs columns {path_column!r} and {label_column!r} "
            f"(found {', '.join(sorted(columns)) if columns else 'none'})"
        )
    seen: dict[str, list[tuple[int, str | None, object]]] = {}
    for number, row in enumerate(rows, start=2):
        raw = str(row.get(path_column) or "").strip()
        if not raw:
            continue
        rel = table_rel_path(raw, path, root)
        pid = str(row.get(patient_column) or "").strip() or None
        seen.setdefault(rel, []).append((number, pid, row.get(label_column)))
    labels: dict[str, tuple[str | None, int | None]] = {}
    problems: dict[str, LabelProblem] = {}
    for rel, entries in seen.items():
        first_number, pid, raw = entries[0]
        for number, other_pid, other_raw in entries[1:]:
            if other_pid != pid:
                problems[rel] = LabelProblem(
                    f"{path.name} rows {first_number} and {number} give this image two patients "
                    f"({pid or 'none'} and {other_pid or 'none'})", "label_conflict")
                break
            if parse_label(other_raw) != parse_label(raw) or (parse_label(raw) is None and str(other_raw) != str(raw)):
                problems[rel] = LabelProblem(
                    f"{path.name} rows {first_number} and {number} give this image two labels "
                    f"({str(raw).strip() or 'none'} and {str(other_raw).strip() or 'none'})", "label_conflict")
                break
        label = parse_label(raw)
        if rel not in problems and label is None and not _blank(raw):
            problems[rel] = _bad_label(raw, f"{path.name} row {first_number}")
        labels[rel] = (pid, label)
    return labels, problems
