"""What every dataset layout module provides to the scan, and the BI-RADS label mapping.

A layout reads its tables once (``__init__``), may exclude files before their header
is read (``prefilter``: RSNA's unlabelled ``test_images/``), and then turns the header
reads into records (``assign``). The simple layouts judge one image at a time
(``judge``); CBIS-DDSM looks at all of them together (crop and mask series are told
apart by their size against the full image). ``label_rule`` says in words how labels
were derived; ``finish`` adds what the tables list without images and the traps found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import LabelProblem
from arfl_studio.data.datasets.lesions import Lesion
from arfl_studio.data.datasets.reasons import Rejection
from arfl_studio.data.datasets.records import ImageRecord, ScanResult

if TYPE_CHECKING:
    from arfl_studio.data.dicom.reader import HeaderInfo

# (path relative to the dataset root, the file's path, its header) of one readable file
HeaderRow = tuple[str, str, "HeaderInfo"]

# BI-RADS -> label for datasets without pathology (VinDr-Mammo, INbreast); 3 and 0 excluded.
DEFAULT_BIRADS_POSITIVE = ("4", "4a", "4b", "4c", "5", "6")
DEFAULT_BIRADS_NEGATIVE = ("1", "2")


def birads_code(value: object) -> str | None:
    """'BI-RADS 4' / '4A' / 4.0 -> '4' / '4a' / '4'; None when blank or not a category."""
    text = str(value or "").strip().lower().replace("bi-rads", "").replace("birads", "").strip()
    text = text[:-2] if text.endswith(".0") else text
    return text if re.fullmatch(r"[0-6][abc]?", text) else None


@dataclass(frozen=True)
class BiradsMapping:
    """Which BI-RADS categories are positive and negative; every other one is excluded."""

    positive: tuple[str, ...] = DEFAULT_BIRADS_POSITIVE
    negative: tuple[str, ...] = DEFAULT_BIRADS_NEGATIVE

    def label(self, code: str | None) -> int | None:
        if code is None:
            return None
        if code in self.positive or code[:1] in self.positive:
            return 1
        if code in self.negative or code[:1] in self.negative:
            return 0
        return None

    def describe(self) -> str:
        return (
            f"BI-RADS {', '.join(self.positive)} = malignant (positive), {', '.join(self.negative)} = benign "
            "(negative), every other category excluded; a label from BI-RADS, not from pathology"
        )


@dataclass
class Verdict:
    """What a layout says about one readable image."""

    label: int | None = None
    patient: str | None = None
    laterality: str | None = None
    view: str | None = None
    lesions: tuple[Lesion, ...] = ()
    split: str | None = None
    problem: LabelProblem | None = None  # the table is wrong about it: rejected
    excluded: str | None = None  # readable but not a training image (policy): excluded, with why


class Layout:
    """Base of the layout modules; see the module docstring."""

    name = ""
    accepts_stripped_headers = False  # the dataset's table, not the header, says it is a mammogram

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        self.root, self.table, self.options = root, table, options

    label_rule = ""

    def prefilter(self, rel: str) -> str | None:
        """Why a file is excluded before its header is read (None: read it)."""
        return None

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        raise NotImplementedError

    def assign(self, headers: list[HeaderRow], result: ScanResult, frame: int | None) -> None:
        """(rel, path, header) of every readable file -> records, unlabeled, rejected, excluded."""
        for rel, path, info in headers:
            verdict = self.judge(rel, info)
            add_record(result, rel, path, info, verdict, frame)

    def finish(self, result: ScanResult) -> None:
        """After the files: label rows without images, traps and notes."""


def add_record(result: ScanResult, rel: str, path: str, info: HeaderInfo, verdict: Verdict, frame: int | None) -> None:
    if verdict.problem is not None:
        result.rejected.append(Rejection(rel, verdict.problem.reason, verdict.problem.category))
    elif verdict.excluded is not None:
        result.excluded.append((rel, verdict.excluded))
    elif verdict.label is None:
        result.unlabeled.append(rel)
    else:
        patient = verdict.patient or info.patient_id or Path(rel).parent.as_posix() or Path(rel).stem
        result.images.append(
            ImageRecord(
                path=Path(path),
                rel_path=rel,
                patient_id=patient,
                laterality=verdict.laterality or info.laterality,
                view=verdict.view or info.view,
                label=int(verdict.label),
                frame=frame if info.frames > 1 else None,
                lesions=tuple(verdict.lesions),
                split=verdict.split,
            )
        )


def find_file(root: Path, names: tuple[str, ...], depth: int = 1) -> Path | None:
    """The first of ``names`` in ``root``, its parent, or (``depth``) its sub-folders."""
    for base in (root, root.parent):
        for name in names:
            if (base / name).is_file():
                return base / name
    if depth:
        for name in names:
            for candidate in sorted(root.glob(f"*/{name}")):
                if candidate.is_file() and not candidate.is_symlink():
                    return candidate
    return None
