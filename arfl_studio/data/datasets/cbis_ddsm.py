"""CBIS-DDSM, the Curated Breast Imaging Subset of DDSM (TCIA, doi:10.7937/K9/TCIA.2016.7O02S9CY;
Lee et al. 2017, Sci Data 4:170177), as the NBIA Data Retriever downloads it.

``CBIS-DDSM/<Subject ID>/<study>/<series folder>/1-1.dcm`` with ``metadata.csv`` at the
download root (``Subject ID``, ``Series Description``, ``File Location`` =
``./CBIS-DDSM/<Subject ID>/<study>/<series folder>``) and the four case-description CSVs
(``mass_case_description_{train,test}_set.csv``, ``calc_case_description_{train,test}_set.csv``).

The CSVs' ``image file path`` / ``ROI mask file path`` use DICOM-UID folders and
``000000.dcm`` names that do not exist on disk, and some fields end in a stray newline,
so they are joined on the path's first component (= ``Subject ID``) and the series
description through ``metadata.csv``'s ``File Location``, never on the CSV path. Full
images: Subject IDs like ``Mass-Training_P_00001_LEFT_CC``; each abnormality's ROI mask
and cropped image: ``Mass-Training_P_00001_LEFT_CC_1``. A ROI series may hold both the
crop and the mask (1-1.dcm / 1-2.dcm in either order): the mask is the one with the full
image's size (content, not file name); a mask of another size is skipped with a reason.
Masks are lesion annotations; crops and masks are never training images.

Label: pathology ``MALIGNANT`` -> malignant, ``BENIGN`` / ``BENIGN_WITHOUT_CALLBACK`` ->
benign; an image with any malignant abnormality is malignant. Laterality and view come
from the CSV (the files carry only the series-level Laterality, no ViewPosition). The
official train/test split is kept on each record (``split``).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import LayoutError
from arfl_studio.data.datasets.layout_base import HeaderRow, Layout, Verdict, add_record
from arfl_studio.data.datasets.lesions import Lesion, lesion_type, pathology

if TYPE_CHECKING:
    from arfl_studio.data.datasets.records import ScanResult
    from arfl_studio.data.dicom.reader import HeaderInfo

CASE_TABLES = (
    "mass_case_description_train_set.csv",
    "mass_case_description_test_set.csv",
    "calc_case_description_train_set.csv",
    "calc_case_description_test_set.csv",
)
FULL, ROI, CROP = "full mammogram images", "roi mask images", "cropped images"


def _clean(value: object) -> str:
    return str(value or "").strip()  # strips the stray newlines of the CSVs


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [{_clean(k): _clean(v) for k, v in row.items() if k is not None} for row in csv.DictReader(handle)]


def _series_key(location: str) -> tuple[str, ...]:
    """The last three components (subject / study / series) of a path, '\\' or '/' separated."""
    return tuple(PurePosixPath(location.replace("\\", "/")).parts[-3:])


class CbisDdsmLayout(Layout):
    name = "cbis-ddsm"
    label_rule = (
        "case-description CSVs 'pathology' per abnormality (MALIGNANT = malignant; BENIGN, "
        "BENIGN_WITHOUT_CALLBACK = benign); an image with any malignant abnormality is malignant"
    )

    @staticmethod
    def detect(root: Path) -> Path | None:
        for base in (root, root.parent):
            if (base / "metadata.csv").is_file() and any((base / n).is_file() for n in CASE_TABLES):
                return base / "metadata.csv"
        return None

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        table = table or self.detect(root)
        if table is None:
            raise LayoutError("CBIS-DDSM needs metadata.csv and the case-description CSVs at the download root")
        super().__init__(root, table, options)
        self.series: dict[tuple[str, ...], tuple[str, str]] = {}  # series folder -> (subject, description)
        for row in _read_csv(table):
            if row.get("File Location"):
                self.series[_series_key(row["File Location"])] = (row.get("Subject ID", ""), row.get("Series Description", "").lower())
        self.cases: dict[str, list[dict[str, str]]] = defaultdict(list)  # full-image subject -> abnormality rows
        self.split_of: dict[str, set[str]] = defaultdict(set)  # patient -> official splits
        for name in CASE_TABLES:
            path = table.parent / name
            if not path.is_file():
                continue
            split = "train" if "train" in name else "test"
            for row in _read_csv(path):
                subject = PurePosixPath(row.get("image file path", "").replace("\\", "/")).parts[:1]
                if subject:
                    self.cases[subject[0]].append({**row, "_split": split, "_kind": name.split("_")[0]})
                    self.split_of[row.get("patient_id", "")].add(split)

    def _subject(self, rel: str) -> tuple[str, str]:
        return self.series.get(tuple(PurePosixPath(rel).parent.parts[-3:]), ("", ""))

    def assign(self, headers: list[HeaderRow], result: ScanResult, frame: int | None) -> None:
        by_subject: dict[str, list[HeaderRow]] = defaultdict(list)
        for rel, path, info in headers:
            subject, description = self._subject(rel)
            if subject:
                by_subject[subject].append((rel, path, info))
            else:
                result.unlabeled.append(rel)  # a folder metadata.csv does not list
        for subject, files in sorted(by_subject.items()):
            if subject not in self.cases:
                continue
            for rel, path, info in files:
                add_record(result, rel, path, info, self._full_verdict(subject, info, by_subject, result), frame)
        full_subjects = set(self.cases)
        for subject, files in by_subject.items():
            if subject not in full_subjects:
                for rel, _path, _info in files:
                    what = "ROI mask or cropped image" if self._subject(rel)[1] in (ROI, CROP) else "not in a case CSV"
                    result.excluded.append((rel, f"not a training image: CBIS-DDSM {what}"))

    def _full_verdict(self, subject: str, info: HeaderInfo, by_subject: dict[str, list[HeaderRow]], result: ScanResult) -> Verdict:
        rows = self.cases[subject]
        lesions = []
        for row in rows:
            roi_subject = PurePosixPath(row.get("ROI mask file path", "").replace("\\", "/")).parts[:1]
            mask = None
            candidates = by_subject.get(roi_subject[0], []) if roi_subject else []
            same = [rel for rel, _p, other in candidates if (other.rows, other.columns) == (info.rows, info.columns)]
            if same:
                mask = same[0]
            elif candidates:
                result.lesion_problems.append(
                    f"{roi_subject[0]}: no ROI mask of the image's size {info.rows}x{info.columns} (found "
                    f"{', '.join(f'{o.rows}x{o.columns}' for _r, _p, o in candidates)}); lesion kept without outline"
                )
            kind = row.get("abnormality type", "")
            lesions.append(Lesion(lesion_type(kind), kind, pathology(row.get("pathology")), row.get("assessment") or None, mask=mask))
        labels = [p == "malignant" for p in (les.pathology for les in lesions) if p is not None]
        first = rows[0]
        side = {"LEFT": "L", "RIGHT": "R"}.get(first.get("left or right breast", "").upper())
        return Verdict(
            label=int(any(labels)) if labels else None,
            patient=first.get("patient_id") or None,
            laterality=side,
            view=first.get("image view", "").upper() or None,
            lesions=tuple(lesions),
            split=first["_split"],
        )

    def finish(self, result: ScanResult) -> None:
        both = sorted(p for p, splits in self.split_of.items() if len(splits) > 1)
        if both:
            result.notes.append(
                f"{len(both)} patient(s) in both the official train and test CSVs "
                f"(e.g. {', '.join(both[:3])}): the official split leaks them"
            )
        views: dict[tuple[str | None, str | None, str | None], set[str]] = defaultdict(set)
        for subject, rows in self.cases.items():
            row = rows[0]
            views[(row.get("patient_id"), row.get("left or right breast"), row.get("image view"))].add(row["_kind"])
        twice = sorted(k for k, kinds in views.items() if len(kinds) > 1)
        if twice:
            result.notes.append(
                f"{len(twice)} image(s) listed under both mass and calc (the same film twice, as two "
                f"files; e.g. {' '.join(map(str, twice[0]))})"
            )
        seen = {self._subject(r.rel_path)[0] for r in result.images}
        result.labels_without_images = sorted((s, None) for s in self.cases if s not in seen)
