"""The demo's patients and their clinical table (``CMMD_clinicaldata_revision.xlsx``).

Each patient has one or both breasts labelled (Malignant/Benign, 60 % of patients
malignant, balanced in any slice of patients); a breast without a row is normal and
comes out of a scan as "unlabeled", as in CMMD.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from arfl_studio.atomic import write_bytes


def patient_plan(seed: int, index: int) -> dict:
    rng = np.random.default_rng([seed, index, 7])
    sides = ["L", "R"]
    first = sides[int(rng.integers(0, 2))]
    labelled = [first] if rng.random() < 0.55 else ["L", "R"]
    labels: dict[str, int | None] = {"L": None, "R": None}
    malignant_patient = (index + seed) % 5 in (0, 2, 4)  # 60 %, balanced in any slice
    for side in labelled:
        if malignant_patient and side == first:
            labels[side] = 1
        elif malignant_patient:
            labels[side] = int(rng.random() < 0.3)
        else:
            labels[side] = 0
    return {"labels": labels, "age": int(rng.integers(32, 82))}


def clinical_rows(patient_id: str, plan: dict, findings: dict[str, list[dict]], rng: np.random.Generator) -> list[list]:
    rows = []
    for side in ("L", "R"):
        label = plan["labels"][side]
        if label is None:
            continue
        kinds = {f["kind"] for f in findings[side]}
        mass = bool(kinds & {"spiculated", "round"})
        calc = bool(kinds & {"fine_calcs", "coarse_calcs"})
        abnormality = "both" if mass and calc else ("calcification" if calc else "mass")
        subtype = None
        if label == 1:
            subtype = ["Luminal A", "Luminal B", "HER2-enriched", "triple negative"][int(rng.integers(0, 4))]
        rows.append([patient_id, side, plan["age"], 2, abnormality, "Malignant" if label else "Benign", subtype])
    return rows


def write_clinical_table(path: Path, rows: list[list]) -> None:
    import datetime

    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"])
    for row in rows:
        sheet.append(row)
    fixed = datetime.datetime(2021, 1, 1)
    book.properties.created = fixed
    book.properties.modified = fixed
    book.properties.creator = "ARFL Studio demo generator"
    buffer = io.BytesIO()
    book.save(buffer)
    write_bytes(path, _fixed_zip_times(buffer.getvalue()))


def _fixed_zip_times(data: bytes) -> bytes:
    """The same xlsx with every zip entry and the "modified" property dated 2021-01-01:
    openpyxl stamps the current time on save, so identical runs would differ in bytes."""
    import re
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2021, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(<)", rb"\g<1>2021-01-01T00:00:00Z\g<2>", content)
            target.writestr(fixed, content)
    return out.getvalue()
