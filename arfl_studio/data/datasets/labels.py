"""Label tables: the CMMD clinical table and a labels CSV/xlsx (path, patient, label).

A table that contradicts itself is never resolved silently: the same image listed with two
labels or two patients is dropped with a reason naming the rows (rows are numbered as a
spreadsheet shows them, the header being row 1); rows that agree are fine. A label that is
neither benign nor malignant ("maybe", "2") gets a reason too, instead of passing as unlabeled.

Each layout accepts only the label words of :data:`LABEL_VOCABULARY` (plus a mapping the
user states, ``label_map``); any other value, "TRUE" say, refuses the image with a reason
that lists the values the table holds, never a guess.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LABEL_NAMES = {0: "benign", 1: "malignant"}
CMMD_COLUMNS = ("ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype")
CMMD_KEY_COLUMNS = ("ID1", "LeftRight", "classification")
CMMD_TABLE_NAMES = ("CMMD_clinicaldata_revision.xlsx", "CMMD_clinicaldata_revision.csv")

# The label words each layout accepts (compared case-insensitively; "1.0" reads as "1", as a
# spreadsheet stores numbers) and the class each means: 0 benign, 1 malignant. A layout that
# is not listed uses "csv"'s words. Words such as true/false, positive/negative or normal/cancer
# are not guessed at: a dataset that uses them states its mapping (``label_map``, e.g.
# ``[data] label_map = {TRUE = 1, FALSE = 0}``). A new layout adds its row here.
LABEL_VOCABULARY: dict[str, dict[str, int]] = {
    "cmmd": {"benign": 0, "malignant": 1},  # the clinical table's "classification" column
    # a labels table's label column; "normal" (no finding) is the negative class of malignant-vs-rest, as in
    # mini-MIAS (normal | benign | malignant)
    "csv": {"0": 0, "1": 1, "benign": 0, "malignant": 1, "b": 0, "m": 1, "normal": 0},
    "folders": {"benign": 0, "malignant": 1},  # a class folder's name
}
_SEEN_SHOWN = 8  # how many distinct values a bad-label reason lists


class LayoutError(ValueError):
    """The dataset layout or labels file cannot be used; the message says why."""


@dataclass(frozen=True)
class LabelProblem:
    reason: str
    category: str  # "label_conflict" | "bad_label"


def label_vocabulary(layout: str = "csv", label_map: Mapping[str, object] | None = None) -> dict[str, int]:
    """The words ``layout`` accepts and their class, with ``label_map`` (word -> 0/1 or
    "benign"/"malignant") added; a mapping to anything else raises :class:`LayoutError`."""
    words = dict(LABEL_VOCABULARY.get(layout, LABEL_VOCABULARY["csv"]))
    for word, value in (label_map or {}).items():
        meaning = LABEL_VOCABULARY["csv"].get(_word(value)) if not isinstance(value, bool) else None
        if meaning is None:
            raise LayoutError(f"label_map maps {word!r} to {value!r}; map each word to 0 (benign) or 1 (malignant)")
        words[_word(word)] = meaning
    return words


def _word(value: object) -> str:
    text = str(value).strip().lower()
    return text[:-2] if text.endswith(".0") else text


def parse_label(value: object, vocabulary: Mapping[str, int] | None = None) -> int | None:
    """0/1 for a word of ``vocabulary`` (default: the csv layout's), else None."""
    if value is None:
        return None
    return (LABEL_VOCABULARY["csv"] if vocabulary is None else vocabulary).get(_word(value))


def _blank(value: object) -> bool:
    return value is None or not str(value).strip()


def _values_seen(values: list[object]) -> str:
    distinct = list(dict.fromkeys(str(v).strip() for v in values if not _blank(v)))
    shown = ", ".join(repr(v) for v in distinct[:_SEEN_SHOWN])
    return shown + (f" and {len(distinct) - _SEEN_SHOWN} more" if len(distinct) > _SEEN_SHOWN else "")


def _bad_label(value: object, where: str, vocabulary: Mapping[str, int], seen: str) -> LabelProblem:
    accepted = ", ".join(sorted(vocabulary, key=lambda w: (vocabulary[w], w)))
    return LabelProblem(
        f"label {str(value).strip()!r} ({where}) is not one of the accepted labels ({accepted}); "
        f"the table's labels are {seen}: state what other words mean with a label map",
        "bad_label",
    )


# Most bytes an xlsx may expand to (the sum of its zip members' declared sizes, which zipfile
# enforces while inflating): a clinical table of 100,000 rows is a few tens of MB; a
# decompression bomb (kilobytes that inflate to gigabytes) is refused before openpyxl opens it.
# Set the environment variable ARFL_MAX_TABLE_BYTES to change it.
DEFAULT_MAX_TABLE_BYTES = 500_000_000


def _check_expanded_size(path: Path) -> None:
    import os
    import zipfile

    try:
        limit = int(os.environ.get("ARFL_MAX_TABLE_BYTES", ""))
    except ValueError:
        limit = 0
    limit = limit if limit > 0 else DEFAULT_MAX_TABLE_BYTES  # like ARFL_MAX_PIXELS: a positive whole number
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(member.file_size for member in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise LayoutError(f"cannot read {path.name}: not an xlsx workbook ({err})") from None
    if expanded > limit:
        raise LayoutError(
            f"cannot read {path.name}: it expands to {expanded / 1e6:.0f} MB, more than the "
            f"{limit / 1e6:g} MB a labels table may (a decompression bomb?); set "
            "ARFL_MAX_TABLE_BYTES to allow it"
        )


def read_table(path: Path) -> list[dict[str, object]]:
    """Rows of an xlsx (first sheet) or CSV file as dicts keyed by the header row."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        _check_expanded_size(path)
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
            try:
                if reader.fieldnames:
                    reader.fieldnames = [f.strip() for f in reader.fieldnames]
                return [row for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]
            except csv.Error as err:  # e.g. a field over csv's 131,072-character limit
                raise LayoutError(f"cannot read {path.name} (after line {reader.line_num}): {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LayoutError(f"cannot read {path.name}: {err}") from None


def table_columns(path: Path) -> set[str]:
    rows = read_table(path)
    return set(rows[0].keys()) if rows else set()


def looks_like_cmmd(columns: set[str], path_column: str = "path") -> bool:
    """A table with CMMD's own column names and no image path column is meant as CMMD."""
    return path_column not in columns and len(columns & set(CMMD_KEY_COLUMNS)) >= 2


def read_cmmd_labels(
    path: str | os.PathLike[str],
    label_map: Mapping[str, object] | None = None,
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], LabelProblem]]:
    """(ID1, LeftRight) -> 0/1 from the CMMD clinical table, and breasts whose label is unusable
    (a word outside :data:`LABEL_VOCABULARY` ``["cmmd"]`` and ``label_map``).

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
    vocabulary = label_vocabulary("cmmd", label_map)
    seen = _values_seen([row.get("classification") for row in rows])
    labels: dict[tuple[str, str], int] = {}
    problems: dict[tuple[str, str], LabelProblem] = {}
    for number, row in enumerate(rows, start=2):
        pid = str(row.get("ID1") or "").strip()
        side = str(row.get("LeftRight") or "").strip().upper()[:1]
        if not pid or side not in ("L", "R"):
            continue
        raw = row.get("classification")
        label = parse_label(raw, vocabulary)
        if label is None:
            if not _blank(raw):
                problems[(pid, side)] = _bad_label(raw, f"{path.name} row {number}", vocabulary, seen)
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
    path: Path,
    root: Path,
    *,
    path_column: str = "path",
    patient_column: str = "patient",
    label_column: str = "label",
    label_map: Mapping[str, object] | None = None,
) -> tuple[dict[str, tuple[str | None, int | None]], dict[str, LabelProblem]]:
    """rel_path -> (patient or None, label or None) from a labels table, and images with a problem.

    Paths resolve as :func:`table_rel_path` says. Labels are the words of
    :data:`LABEL_VOCABULARY` ``["csv"]`` and ``label_map``.
    """
    rows = read_table(path)
    columns = set(rows[0]) if rows else set()
    if path_column not in columns or label_column not in columns:
        raise LayoutError(
            f"{path.name} needs columns {path_column!r} and {label_column!r} (found {', '.join(sorted(columns)) if columns else 'none'})"
        )
    vocabulary = label_vocabulary("csv", label_map)
    values = _values_seen([row.get(label_column) for row in rows])
    seen: dict[str, list[tuple[int, str | None, object]]] = {}
    for number, row in enumerate(rows, start=2):
        raw_path = str(row.get(path_column) or "").strip()
        if not raw_path:
            continue
        rel = table_rel_path(raw_path, path, root)
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
                    f"({pid or 'none'} and {other_pid or 'none'})",
                    "label_conflict",
                )
                break
            label, other = parse_label(raw, vocabulary), parse_label(other_raw, vocabulary)
            if other != label or (label is None and str(other_raw) != str(raw)):
                problems[rel] = LabelProblem(
                    f"{path.name} rows {first_number} and {number} give this image two labels "
                    f"({str(raw).strip() or 'none'} and {str(other_raw).strip() or 'none'})",
                    "label_conflict",
                )
                break
        label = parse_label(raw, vocabulary)
        if rel not in problems and label is None and not _blank(raw):
            problems[rel] = _bad_label(raw, f"{path.name} row {first_number}", vocabulary, values)
        labels[rel] = (pid, label)
    return labels, problems
