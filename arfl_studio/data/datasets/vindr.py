"""VinDr-Mammo (PhysioNet, doi:10.13026/br2v-7517; Nguyen et al. 2023, Sci Data 10:277).

``images/<study_id>/<image_id>.dicom`` with ``breast-level_annotations.csv`` (``study_id,
series_id, image_id, laterality, view_position, height, width, breast_birads,
breast_density, split``) and ``finding_annotations.csv`` (the same plus
``finding_categories`` (a Python-list string such as ``"['Mass']"``), ``finding_birads``,
``xmin, ymin, xmax, ymax``; boxes may be empty or negative). Values read ``BI-RADS 4``.

VinDr has no pathology: the label comes from the breast-level BI-RADS through a mapping
the user sees and can change (``birads_positive`` / ``birads_negative``; default 4-5
positive, 1-2 negative, 3 excluded). Study = patient (VinDr publishes no patient ID).
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Iterable

from arfl_studio.data.datasets.labels import LayoutError, read_table
from arfl_studio.data.datasets.layout_base import BiradsMapping, Layout, Verdict, birads_code, find_file
from arfl_studio.data.datasets.lesions import Lesion, lesion_type

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

BREAST_TABLE, FINDING_TABLE = "breast-level_annotations.csv", "finding_annotations.csv"


def mapping_from(options: dict[str, Any]) -> BiradsMapping:
    """The BI-RADS mapping of ``options`` (lists or comma-separated text), else the default."""

    def codes(value: str | Iterable[object] | None, default: tuple[str, ...]) -> tuple[str, ...]:
        if value is None:
            return default
        items = value.split(",") if isinstance(value, str) else value
        return tuple(c for c in (birads_code(v) for v in items) if c)

    default = BiradsMapping()
    return BiradsMapping(codes(options.get("birads_positive"), default.positive), codes(options.get("birads_negative"), default.negative))


def _categories(text: str) -> list[str]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return [text] if text else []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def _float(text: object) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _box(row: dict[str, object]) -> tuple[float, float, float, float] | None:
    """(row0, row1, col0, col1) from a finding's xmin, ymin, xmax, ymax; None when any is empty."""
    xmin, ymin, xmax, ymax = (_float(row.get(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    if xmin is None or ymin is None or xmax is None or ymax is None:
        return None
    return ymin, ymax, xmin, xmax


class VindrLayout(Layout):
    name = "vindr"

    @staticmethod
    def detect(root: Path) -> Path | None:
        return find_file(root, (BREAST_TABLE,))

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        table = table or self.detect(root)
        if table is None:
            raise LayoutError(f"VinDr-Mammo needs {BREAST_TABLE}")
        super().__init__(root, table, options)
        self.mapping = mapping_from(options)
        self.label_rule = f"{BREAST_TABLE} breast_birads: {self.mapping.describe()}"
        self.rows = {str(r.get("image_id") or "").strip(): r for r in read_table(table)}
        self.findings: dict[str, list[Lesion]] = {}
        findings = table.parent / FINDING_TABLE
        for row in read_table(findings) if findings.is_file() else []:
            categories = [c for c in _categories(str(row.get("finding_categories") or "").strip()) if c != "No Finding"]
            if not categories:
                continue
            lesion = Lesion(lesion_type(categories[0]), "; ".join(categories), None, birads_code(row.get("finding_birads")), box=_box(row))
            self.findings.setdefault(str(row.get("image_id") or "").strip(), []).append(lesion)
        self.seen: set[str] = set()

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        image_id = PurePosixPath(rel).stem
        row = self.rows.get(image_id)
        if row is None:
            return Verdict()
        self.seen.add(image_id)
        code = birads_code(row.get("breast_birads"))
        label = self.mapping.label(code)
        split = str(row.get("split") or "").strip().lower() or None
        common: dict[str, Any] = dict(
            patient=str(row.get("study_id") or "").strip() or None,
            laterality=str(row.get("laterality") or "").strip().upper()[:1] or None,
            view=str(row.get("view_position") or "").strip().upper() or None,
            split=split,
        )
        if label is None:
            return Verdict(excluded=f"excluded by the BI-RADS mapping: breast BI-RADS {code or 'missing'}", **common)
        return Verdict(label=label, lesions=tuple(self.findings.get(image_id, ())), **common)

    def finish(self, result: ScanResult) -> None:
        result.labels_without_images = sorted(
            ((str(r.get("study_id") or ""), str(r.get("laterality") or "") or None) for i, r in self.rows.items() if i not in self.seen),
            key=lambda k: (k[0], k[1] or ""),
        )
        result.notes.append(f"labels from BI-RADS, not pathology: {self.mapping.describe()}")
