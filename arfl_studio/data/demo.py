"""The built-in demo dataset: synthetic DICOM mammograms in the CMMD layout.

Each patient gets CC and MLO views of both breasts (MG, "FOR PRESENTATION",
12 bits stored in 16, ViewPosition empty and the view coded in ViewCodeSequence
like CMMD). The clinical table ``CMMD_clinicaldata_revision.xlsx`` labels one or
both breasts per patient; breasts without a row are normal and come out of a scan
as "unlabeled", as in CMMD.

Image model (all vectorised numpy):
- breast outline: a half ellipse from the chest wall with a soft skin edge; MLO
  views add the pectoral muscle;
- parenchyma: 1/f^beta noise (beta ~ 3, the power-law spectrum measured on real
  mammograms), thresholded softly into fibroglandular density near the chest wall;
- findings (lesions) come from ``demo_findings``.

Files mix MONOCHROME1/MONOCHROME2, LINEAR/SIGMOID VOI functions and transfer
syntaxes (explicit VR little endian, RLE lossless, JPEG 2000 lossless, JPEG-LS
lossless). Output is deterministic per seed (images, tags and UIDs).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from arfl_studio.atomic import write_bytes, write_json
from arfl_studio.data.demo_findings import draw_findings, plan_findings

DEFAULT_PATIENTS = 64
DEFAULT_SIZE = (256, 208)  # rows, columns
CLINICAL_TABLE = "CMMD_clinicaldata_revision.xlsx"
MANIFEST = "demo_manifest.json"
GENERATOR_VERSION = 2  # bump when the images change: cached demos regenerate

VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
LATERALITY_CODES = {"L": ("T-04030", "Left breast"), "R": ("T-04020", "Right breast")}
_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
)


class GenerationCancelled(RuntimeError):
    """Demo generation was cancelled; nothing was left behind."""


# ---------------------------------------------------------------- where


def default_data_dir() -> Path:
    """The user's data folder for ARFL Studio (``ARFL_STUDIO_DATA`` overrides it)."""
    env = os.environ.get("ARFL_STUDIO_DATA")
    if env:
        return Path(env).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
        return base / "ARFL Studio"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "ARFL Studio"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "arfl-studio"


def default_demo_dir() -> Path:
    return default_data_dir() / "demo-cmmd"


# ---------------------------------------------------------------- image model


def power_law_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Zero-mean, unit-std 2-D noise with power spectrum ~ 1/f^beta."""
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    amplitude = f ** (-beta / 2.0)
    amplitude[0, 0] = 0.0
    spectrum = (rng.standard_normal(amplitude.shape) + 1j * rng.standard_normal(amplitude.shape)) * amplitude
    field = np.fft.irfft2(spectrum, s=shape).astype(np.float32)
    field -= field.mean()
    field /= field.std() + 1e-8
    return field


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _breast(rng: np.random.Generator, h: int, w: int, view: str, shape_params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(soft breast mask, pectoral mask) with the chest wall at column 0."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = shape_params["depth"] * w  # extent from the chest wall
    b = shape_params["height"] * h / 2  # half height at the chest wall
    cy = shape_params["center"] * h
    if view == "MLO":
        b *= 1.12
        cy += 0.06 * h
        tilt = 0.18  # the breast hangs: outline centre drifts down with depth
    else:
        tilt = 0.0
    yc = cy + tilt * xx
    r = np.sqrt((xx / a) ** 2 + ((yy - yc) / b) ** 2)
    edge = max(w, h) * 0.012
    mask = _sigmoid((1.0 - r) * a / edge)
    # tissue thickness falls off towards the skin line
    thickness = np.sqrt(np.clip(1.0 - r * r, 0.0, 1.0)) ** 0.6
    breast = mask * (0.55 + 0.45 * thickness)
    pectoral = np.zeros_like(breast)
    if view == "MLO":
        top = shape_params["pectoral"] * w
        line = top * (1.0 - yy / (0.55 * h))  # pectoral edge: from (0, top) down to (0.55h, 0)
        pectoral = _sigmoid((line - xx) / (edge * 0.8)) * mask
    return breast.astype(np.float32), pectoral.astype(np.float32)


def render_view(
    rng: np.random.Generator,
    size: tuple[int, int],
    view: str,
    shape_params: dict,
    findings: list[dict],
) -> np.ndarray:
    """One view, chest wall at column 0, float32 intensity (tissue bright), about [0, 1]."""
    h, w = size
    breast, pectoral = _breast(rng, h, w, view, shape_params)
    texture = power_law_noise(rng, (h, w), beta=shape_params["beta"])
    fine = power_law_noise(rng, (h, w), beta=1.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # fibroglandular tissue: denser near the chest wall, soft-thresholded noise
    gradient = 1.0 - xx / (shape_params["depth"] * w)
    density = _sigmoid((texture + shape_params["density"] + 0.8 * gradient - 0.6) * 2.2)
    img = breast * (0.30 + 0.30 * density + 0.035 * fine)
    img = np.maximum(img, pectoral * (0.72 + 0.04 * fine))
    draw_findings(img, rng, view, findings)
    img *= _sigmoid((breast - 0.05) * 40)  # lesions stay inside the breast
    img += rng.normal(0.0, 0.008, size=img.shape).astype(np.float32) * (breast > 0.05)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- DICOM


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["arfl-studio-demo", *[str(p) for p in parts]])


def _code_item(value: str, meaning: str, scheme: str = "SCT"):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def build_dicom(
    intensity: np.ndarray,
    *,
    patient_id: str,
    age: int,
    laterality: str,
    view: str,
    photometric: str,
    voi_function: str,
    transfer_syntax: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    instance: int,
    flip: bool,
):
    """A MG "for presentation" data set with 12-bit pixels (tags like CMMD's)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, UID

    img = intensity[:, ::-1] if flip else intensity
    stored = np.rint(img * 3900.0 + 60.0).astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (4095 - stored).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.1.2")  # Digital Mammography - For Presentation
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = "20100718"
    ds.Modality = "MG"
    ds.Manufacturer = "ARFL Studio demo generator"
    ds.PatientName = ""  # de-identified, as in CMMD
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.PatientAge = f"{age:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageLaterality = laterality
    ds.ViewPosition = ""  # CMMD leaves it empty and codes the view below
    view_item = _code_item(*VIEW_CODES[view])
    ds.ViewCodeSequence = Sequence([view_item])
    ds.AnatomicRegionSequence = Sequence([_code_item(*LATERALITY_CODES[laterality], scheme="SRT")])
    ds.PatientOrientation = ["A", "R"] if laterality == "L" else ["P", "L"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(stored.shape[0]), int(stored.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelSpacing = [0.94, 0.94]  # a 3328x2560 detector at 0.07 mm, shrunk to demo size
    ds.ImagerPixelSpacing = [0.94, 0.94]
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.VOILUTFunction = voi_function
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.BurnedInAnnotation = "NO"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(UID(transfer_syntax), generate_instance_uid=False)  # keep UIDs deterministic
    return ds


# ---------------------------------------------------------------- the dataset


def _patient_plan(seed: int, index: int) -> dict:
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


def _clinical_rows(patient_id: str, plan: dict, findings: dict[str, list[dict]], rng: np.random.Generator) -> list[list]:
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


def _write_clinical_table(path: Path, rows: list[list]) -> None:
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
    write_bytes(path, buffer.getvalue())


def generate_demo_dataset(
    out_dir: str | os.PathLike,
    patients: int = DEFAULT_PATIENTS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write the synthetic CMMD-layout dataset into ``out_dir``; returns out_dir.

    ``out_dir`` must be missing, empty, or an earlier demo dataset (replaced).
    Files are written into a temporary sibling folder and moved into place at the
    end, so a cancelled or crashed run leaves nothing half-written; cancelling
    raises GenerationCancelled. ``progress(done, total)`` counts images.
    """
    out_dir = Path(out_dir)
    patients = int(patients)
    h, w = int(size[0]), int(size[1])
    if patients < 1:
        raise ValueError("patients must be at least 1")
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16 pixels, not {h}x{w}")
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise FileExistsError(f"{out_dir} is not empty and is not a demo dataset; choose another folder")
    import logging

    logging.getLogger("openjpeg").setLevel(logging.WARNING)  # its encoder logs every tile at INFO
    work = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    total = patients * 4
    done = 0
    if progress:
        progress(0, total)
    counts = {"images": 0, "by_label": {"benign": 0, "malignant": 0}, "by_view": {"CC": 0, "MLO": 0},
              "by_laterality": {"L": 0, "R": 0}, "unlabeled": 0}
    clinical: list[list] = []
    breasts = {"benign": 0, "malignant": 0}
    patient_labels = {"benign": 0, "malignant": 0}
    try:
        for index in range(patients):
            patient_id = f"D1-{index + 1:04d}"
            plan = _patient_plan(seed, index)
            rng = np.random.default_rng([seed, index, 11])
            shape = {
                "depth": rng.uniform(0.62, 0.86),
                "height": rng.uniform(0.72, 0.9),
                "center": rng.uniform(0.46, 0.54),
                "pectoral": rng.uniform(0.22, 0.34),
                "beta": rng.uniform(2.6, 3.3),
                "density": rng.uniform(-0.8, 0.6),
            }
            findings = {side: plan_findings(rng, plan["labels"][side]) for side in ("L", "R")}
            clinical.extend(_clinical_rows(patient_id, plan, findings, rng))
            for side in ("L", "R"):
                label = plan["labels"][side]
                if label is not None:
                    breasts["malignant" if label else "benign"] += 1
            labelled = [v for v in plan["labels"].values() if v is not None]
            patient_labels["malignant" if max(labelled) else "benign"] += 1
            study_uid = _uid(seed, patient_id, "study")
            series_uid = _uid(seed, patient_id, "series")
            series_dir = work / "CMMD" / patient_id / f"07-18-2010-NA-NA-{10000 + index:05d}" / "1.000000-NA-{:05d}".format(
                20000 + index
            )
            series_dir.mkdir(parents=True, exist_ok=True)
            instance = 0
            for side in ("R", "L"):
                for view in ("CC", "MLO"):
                    if cancel is not None and cancel.is_set():
                        raise GenerationCancelled("demo data generation cancelled")
                    instance += 1
                    view_rng = np.random.default_rng([seed, index, instance, 13])
                    intensity = render_view(view_rng, (h, w), view, shape, findings[side])
                    k = index * 4 + instance
                    ds = build_dicom(
                        intensity,
                        patient_id=patient_id,
                        age=plan["age"],
                        laterality=side,
                        view=view,
                        photometric="MONOCHROME1" if (k * 7 + seed) % 4 == 0 else "MONOCHROME2",
                        voi_function="SIGMOID" if (k * 5 + seed) % 3 == 0 else "LINEAR",
                        transfer_syntax=_SYNTAXES[(k + seed) % len(_SYNTAXES)],
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=_uid(seed, patient_id, instance),
                        instance=instance,
                        flip=(side == "R"),  # right breasts face the other way, as displayed
                    )
                    ds.save_as(series_dir / f"1-{instance}.dcm", enforce_file_format=True)
                    label = plan["labels"][side]
                    counts["images"] += 1
                    counts["by_view"][view] += 1
                    counts["by_laterality"][side] += 1
                    if label is None:
                        counts["unlabeled"] += 1
                    else:
                        counts["by_label"]["malignant" if label else "benign"] += 1
                    done += 1
                    if progress:
                        progress(done, total)
        _write_clinical_table(work / CLINICAL_TABLE, clinical)
        labelled_images = counts["images"] - counts["unlabeled"]
        write_json(
            work / MANIFEST,
            {
                "generator": "arfl-studio demo-data",
                "generator_version": GENERATOR_VERSION,
                "seed": seed,
                "patients": patients,
                "size": [h, w],
                "files": counts["images"],
                "labelled_images": labelled_images,
                "counts": counts,
                "breasts": breasts,
                "patients_by_label": patient_labels,
                "clinical_rows": len(clinical),
                "labels_without_images": 0,
                "rejected": 0,
            },
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def read_demo_manifest(path: str | os.PathLike) -> dict | None:
    import json

    try:
        return json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def ensure_demo_dataset(
    out_dir: str | os.PathLike | None = None,
    patients: int = DEFAULT_PATIENTS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """The demo dataset folder, generated on first use (or when its settings changed)."""
    out_dir = Path(out_dir) if out_dir is not None else default_demo_dir()
    manifest = read_demo_manifest(out_dir)
    if (
        manifest
        and manifest.get("generator_version") == GENERATOR_VERSION
        and manifest.get("seed") == seed
        and manifest.get("patients") == patients
        and list(manifest.get("size", [])) == [int(size[0]), int(size[1])]
        and (out_dir / CLINICAL_TABLE).is_file()
    ):
        return out_dir
    return generate_demo_dataset(out_dir, patients=patients, size=size, seed=seed, progress=progress, cancel=cancel)
