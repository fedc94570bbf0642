"""A folder of DICOM files with a labels table (``labels.csv``: path, patient, label) and,
optionally, ``lesions.csv`` beside it (see ``lesions``): private data and mini-MIAS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import LayoutError, read_csv_labels
from arfl_studio.data.datasets.layout_base import Layout, Verdict
from arfl_studio.data.datasets.lesions import LESIONS_TABLE, Lesion, read_lesion_table

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

LABEL_TABLES = ("labels.csv", "labels.tsv")


class CsvLayout(Layout):
    name = "csv"

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        if table is None:
            table = next((root / n for n in LABEL_TABLES if (root / n).is_file()), None)
            if table is None:
                raise LayoutError("the csv layout needs a labels CSV (--labels FILE)")
        super().__init__(root, table, options)
        self.rows, self.problems = read_csv_labels(
            table,
            root,
            path_column=options.get("path_column", "path"),
            patient_column=options.get("patient_column", "patient"),
            label_column=options.get("label_column", "label"),
            label_map=options.get("label_map"),
        )
        self.lesions: dict[str, list[Lesion]] = {}
        self.lesion_problems: list[str] = []
        for folder in (table.parent, root):
            if (folder / LESIONS_TABLE).is_file():
                self.lesions, self.lesion_problems = read_lesion_table(folder / LESIONS_TABLE, root)
                break
        self.seen: set[str] = set()
        self.label_rule = f"{table.name} label column per image path"

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        if rel not in self.rows:
            return Verdict()
        self.seen.add(rel)
        pid, label = self.rows[rel]
        return Verdict(
            label=label, patient=pid or info.patient_id, problem=self.problems.get(rel), lesions=tuple(self.lesions.get(rel, ()))
        )

    def finish(self, result: ScanResult) -> None:
        result.labels_without_images = sorted((pid or Path(rel).stem, None) for rel, (pid, _) in self.rows.items() if rel not in self.seen)
        kept = {r.rel_path for r in result.images}
        result.lesion_problems += self.lesion_problems + [
            f"{LESIONS_TABLE}: {len(found)} lesion row{'s' if len(found) > 1 else ''} for {rel}, which is not a labelled image of this scan"
            for rel, found in sorted(self.lesions.items())
            if rel not in kept
        ]
