"""RSNA Screening Mammography Breast Cancer Detection (Kaggle 2022-23; the competition's Data page).

``train_images/<patient_id>/<image_id>.dcm`` with ``train.csv`` (``site_id, patient_id,
image_id, laterality, view, age, cancer, biopsy, invasive, BIRADS, implant, density,
machine_id, difficult_negative_case``); about 2 % positives; JPEG 2000 and JPEG Lossless,
MONOCHROME1, SIGMOID VOI LUT. The files are stripped (Digital X-Ray SOP class, no
Modality, no ViewPosition, ImageLaterality only), so inside this layout the dataset's own
table is the evidence: a file listed in ``train.csv`` is a mammogram, with laterality and
view from the table; the label is ``cancer``. ``test_images/`` holds unlabelled images:
excluded before their headers are read.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import LayoutError, parse_label, read_table
from arfl_studio.data.datasets.layout_base import Layout, Verdict, find_file

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

RSNA_COLUMNS = {"patient_id", "image_id", "laterality", "view", "cancer"}


class RsnaLayout(Layout):
    name = "rsna"
    accepts_stripped_headers = True
    label_rule = "train.csv 'cancer' per (patient_id, image_id); laterality and view from train.csv"

    @staticmethod
    def detect(root: Path) -> Path | None:
        table = find_file(root, ("train.csv",), depth=0)
        if table is None or not (table.parent / "train_images").is_dir():
            return None
        with open(table, encoding="utf-8-sig") as handle:
            header = {c.strip() for c in handle.readline().split(",")}
        return table if RSNA_COLUMNS <= header else None

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        table = table or self.detect(root)
        if table is None:
            raise LayoutError("RSNA needs train.csv beside train_images/")
        super().__init__(root, table, options)
        self.rows = {(str(r["patient_id"]).strip(), str(r["image_id"]).strip()): r for r in read_table(table)}
        self.seen: set[tuple[str, str]] = set()

    def prefilter(self, rel: str) -> str | None:
        if "test_images" in PurePosixPath(rel).parts[:-1]:
            return "not a training image: RSNA test_images/ (unlabelled)"
        return None

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        path = PurePosixPath(rel)
        key = (path.parent.name, path.stem)
        row = self.rows.get(key)
        if row is None:
            return Verdict()
        self.seen.add(key)
        return Verdict(
            label=parse_label(row.get("cancer")),
            patient=key[0],
            laterality=str(row.get("laterality") or "").strip().upper()[:1] or None,
            view=str(row.get("view") or "").strip().upper() or None,
        )

    def finish(self, result: ScanResult) -> None:
        result.labels_without_images = sorted((p, None) for p, i in self.rows if (p, i) not in self.seen)
        result.notes.append(
            "RSNA files have no Modality or ViewPosition: train.csv is the evidence that a file "
            "is a mammogram, and gives its laterality and view"
        )
