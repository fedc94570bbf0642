"""INbreast (Moreira et al. 2012, Acad Radiol 19(2):236-248; the distribution's README).

``AllDICOMs/<File Name>_<patient hash>_MG_<L|R>_<CC|ML>_ANON.dcm`` with ``INbreast.xls``
(or its ``;``-separated CSV export; column names with trailing spaces, two total rows at
the end) and ``AllXML/<File Name>.xml``: OsiriX plists whose ROIs have a ``Name`` (Mass,
Calcification, Cluster, Distortion, Asymmetry, Spiculated Region, ...) and ``Point_px``
``"(x, y)"`` strings; a calcification is often a single point.

INbreast gives BI-RADS (1-6 with 4a/4b/4c), not pathology for every image: the label comes
through the same visible mapping as VinDr (default 4-6 positive, 1-2 negative, 3 excluded).
The patient is the hash in the file name (the table's Patient ID column is removed). The
file names abbreviate the MLO view as ``ML`` (``..._MG_R_ML_ANON.dcm`` is the right MLO; the
table's View column says ``MLO``): the view comes from the table, else ``ML`` is read as MLO,
never as a true lateral.
"""

from __future__ import annotations

import plistlib
import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import LayoutError, read_table
from arfl_studio.data.datasets.layout_base import Layout, Verdict, birads_code, find_file
from arfl_studio.data.datasets.lesions import Lesion, lesion_type
from arfl_studio.data.datasets.vindr import mapping_from

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

TABLES = ("INbreast.csv", "INbreast.xls")
_NAME = re.compile(r"^(\d+)_([0-9a-fA-F]+)_MG_([LR])_([A-Z]+)_ANON$")
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*(?:,[^)]*)?\)")


def _read_xls(path: Path) -> list[dict[str, object]]:
    try:
        import xlrd
    except ImportError:
        raise LayoutError(f"reading {path.name} needs the xlrd package (pip install xlrd), or save it as INbreast.csv") from None
    sheet = xlrd.open_workbook(str(path)).sheet_by_index(0)
    names = [str(v).strip() for v in sheet.row_values(0)]
    return [dict(zip(names, sheet.row_values(i))) for i in range(1, sheet.nrows)]


def read_rois(path: Path) -> list[Lesion]:
    """The ROIs of one AllXML plist as lesions (outline polygons; one point = a point lesion)."""
    with open(path, "rb") as handle:
        doc = plistlib.load(handle)
    lesions = []
    for image in doc.get("Images", []):
        for roi in image.get("ROIs", []):
            matches = (_POINT.match(p) for p in roi.get("Point_px", []))
            points = [(float(y), float(x)) for x, y in (m.groups() for m in matches if m)]
            name = str(roi.get("Name", "")).strip()
            if not points:
                continue
            if len(points) == 1:
                lesions.append(Lesion(lesion_type(name), name, centre=points[0]))
            else:
                lesions.append(Lesion(lesion_type(name), name, polygon=tuple(points)))
    return lesions


class InbreastLayout(Layout):
    name = "inbreast"

    @staticmethod
    def detect(root: Path) -> Path | None:
        return find_file(root, TABLES)

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        table = table or self.detect(root)
        if table is None:
            raise LayoutError("INbreast needs INbreast.csv or INbreast.xls")
        super().__init__(root, table, options)
        self.mapping = mapping_from(options)
        self.label_rule = f"{table.name} 'Bi-Rads' per image: {self.mapping.describe()}"
        rows = _read_xls(table) if table.suffix.lower() == ".xls" else read_table(table)
        self.rows: dict[str, dict[str, object]] = {}
        for row in rows:
            name = str(row.get("File Name") or "").strip()
            name = name[:-2] if name.endswith(".0") else name
            side = str(row.get("Laterality") or "").strip().upper()
            if name.isdigit() and side in ("L", "R"):  # the total rows at the end are not images
                self.rows[name] = row
        self.xml_dir = table.parent / "AllXML"
        self.seen: set[str] = set()

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        match = _NAME.match(PurePosixPath(rel).stem)
        if match is None or match.group(1) not in self.rows:
            return Verdict()
        name, patient, side, view = match.groups()
        self.seen.add(name)
        table_view = str(self.rows[name].get("View") or "").strip().upper()
        view = table_view if table_view in ("CC", "MLO") else ("MLO" if view == "ML" else view)
        code = birads_code(self.rows[name].get("Bi-Rads"))
        label = self.mapping.label(code)
        common: dict[str, Any] = dict(patient=patient, laterality=side, view=view)
        if label is None:
            return Verdict(excluded=f"excluded by the BI-RADS mapping: BI-RADS {code or 'missing'}", **common)
        xml = self.xml_dir / f"{name}.xml"
        lesions = tuple(read_rois(xml)) if xml.is_file() else ()
        return Verdict(label=label, lesions=lesions, **common)

    def finish(self, result: ScanResult) -> None:
        result.labels_without_images = sorted((n, None) for n in self.rows if n not in self.seen)
        result.notes.append(f"labels from BI-RADS, not pathology: {self.mapping.describe()}")
