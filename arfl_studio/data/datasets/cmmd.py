"""CMMD, The Chinese Mammography Database (TCIA, doi:10.7937/tcia.eqde-4b16).

``CMMD/D1-0001/<study>/<series>/1-1.dcm ...`` plus the clinical table
``CMMD_clinicaldata_revision.xlsx`` (TCIA's download page): one row per patient and
breast with an abnormality, ``classification`` Benign/Malignant. Images are joined by
the header's PatientID and laterality (folder names are not trusted).

A breast with no row: the table lists only breasts with a biopsied abnormality, so the
other breast of a patient is most likely normal, but TCIA does not say so. The policy is
a visible setting, ``cmmd_missing``: ``unlabeled`` (default: listed, not used) or
``negative`` (used as a negative, benign-class image).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import CMMD_TABLE_NAMES, LayoutError, looks_like_cmmd, read_cmmd_labels, table_columns
from arfl_studio.data.datasets.layout_base import Layout, Verdict

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

MISSING_ROW_POLICIES = ("unlabeled", "negative")


def find_cmmd_table(root: Path) -> Path | None:
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


class CmmdLayout(Layout):
    name = "cmmd"

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        table = table or find_cmmd_table(root)
        if table is None:
            raise LayoutError(f"no CMMD clinical table ({CMMD_TABLE_NAMES[0]}) found; pass --labels FILE")
        super().__init__(root, table, options)
        self.missing = options.get("cmmd_missing") or "unlabeled"
        if self.missing not in MISSING_ROW_POLICIES:
            raise LayoutError(f"cmmd_missing must be one of {', '.join(MISSING_ROW_POLICIES)}, not {self.missing!r}")
        self.labels, self.problems = read_cmmd_labels(table, options.get("label_map"))
        self.seen: set[tuple[str, str]] = set()
        self.label_rule = (
            f"{table.name} 'classification' per patient (ID1) and breast (LeftRight), joined on the "
            f"header's PatientID and laterality; a breast with no row: {self.missing}"
        )

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        patient, side = info.patient_id, info.laterality
        if not (patient and side):
            return Verdict()
        self.seen.add((patient, side))
        problem = self.problems.get((patient, side))
        label = self.labels.get((patient, side))
        if label is None and problem is None and self.missing == "negative":
            label = 0
        return Verdict(label=label, patient=patient, problem=problem)

    def finish(self, result: ScanResult) -> None:
        result.labels_without_images = sorted(k for k in set(self.labels) | set(self.problems) if k not in self.seen)
        if self.missing == "negative":
            result.notes.append("CMMD breasts without a clinical-table row are used as negatives (cmmd_missing)")
