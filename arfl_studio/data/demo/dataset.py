"""The built-in demo dataset: synthetic DICOM mammograms in the CMMD layout.

Each patient gets CC and MLO views of both breasts (``demo_image``: outline with a
gradual skin-line fall-off and a dim fatty rim, parenchyma, findings from
``demo_findings``), written as MG "for presentation" files like CMMD's
(``demo_dicom``), with the clinical table of ``demo_clinical``. Like real images,
most carry a burned-in laterality/view label and some a bright detector-edge stripe
(``demo_artifacts``).

Files mix MONOCHROME1/MONOCHROME2, LINEAR/SIGMOID VOI functions and transfer
syntaxes (explicit VR little endian, RLE lossless, JPEG 2000 lossless, JPEG-LS
lossless). MONOCHROME1 files carry a window fitted to the tissue, as Hologic writes
them, so the background and the fatty rim are pressed together near black.
``large_patients`` renders the first patients at a detector's full size
(``LARGE_SIZE``); the default demo has none, to stay fast. Output is deterministic
per seed (images, tags and UIDs).
"""

from __future__ import annotations

import io
import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from arfl_studio.atomic import write_bytes, write_json
from arfl_studio.data.paths import default_data_dir
from arfl_studio.data.demo.artifacts import add_edge_stripe, burn_label
from arfl_studio.data.demo.clinical import clinical_rows, patient_plan, write_clinical_table
from arfl_studio.data.demo.dicom_files import LATERALITY_CODES, VIEW_CODES, build_dicom, stored_values, tissue_window
from arfl_studio.data.demo.findings import plan_findings
from arfl_studio.data.demo.folder import CLINICAL_TABLE, MANIFEST, check_target, install, partial_folder, remove_stale_partials
from arfl_studio.data.demo.image import breast_shape, power_law_noise, render_view, render_view_with_mask

__all__ = [
    "CLINICAL_TABLE",
    "DEFAULT_PATIENTS",
    "DEFAULT_SIZE",
    "GENERATOR_VERSION",
    "LARGE_SIZE",
    "LATERALITY_CODES",
    "MANIFEST",
    "VIEW_CODES",
    "GenerationCancelled",
    "build_dicom",
    "default_data_dir",
    "default_demo_dir",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "power_law_noise",
    "read_demo_manifest",
    "render_view",
    "render_view_with_mask",
    "render_demo_view",
    "dicom_for_view",
]

DEFAULT_PATIENTS = 64
DEFAULT_SIZE = (256, 208)  # rows, columns
LARGE_SIZE = (4096, 3328)  # a full-field detector (0.059 mm pixels over the same field)
GENERATOR_VERSION = 6  # bump when the images change: cached demos regenerate
_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2.5",  # RLE lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
)


class GenerationCancelled(RuntimeError):
    """Demo generation was cancelled; nothing was left behind."""


# ---------------------------------------------------------------- where


def default_demo_dir() -> Path:
    return default_data_dir() / "demo-cmmd"


# ---------------------------------------------------------------- one view as stored


def render_demo_view(
    rng: np.random.Generator,
    size: tuple[int, int],
    view: str,
    laterality: str,
    shape_params: dict,
    findings: list[dict],
    label: bool = True,
    stripe: str | None = None,
) -> dict:
    """One view as it is stored (right breasts face the other way), with its truth.

    Returns ``intensity`` (float32, tissue bright), ``breast`` (the true breast mask),
    ``label`` and ``stripe`` (masks of the burned-in label and the edge stripe; all
    False when absent). ``stripe`` names the edge ("top", "bottom" or "far", the
    edge opposite the chest wall).
    """
    intensity, breast = render_view_with_mask(rng, size, view, shape_params, findings)
    chest_wall_left = laterality == "L"
    if not chest_wall_left:
        intensity, breast = intensity[:, ::-1].copy(), breast[:, ::-1].copy()
    label_mask = burn_label(intensity, breast, laterality + view, chest_wall_left, rng) if label else np.zeros_like(breast)
    stripe_mask = np.zeros_like(breast)
    if stripe is not None:
        side = ("right" if chest_wall_left else "left") if stripe == "far" else stripe
        stripe_mask = add_edge_stripe(intensity, side, rng)
    return {"intensity": intensity, "breast": breast, "label": label_mask, "stripe": stripe_mask}


def dicom_for_view(view_out: dict, photometric: str, **tags):
    """The stored file: MONOCHROME1 gets a window fitted to the tissue (Hologic style)."""
    window = None
    if photometric == "MONOCHROME1":
        window = tissue_window(stored_values(view_out["intensity"], photometric), view_out["breast"])
    return build_dicom(
        view_out["intensity"], photometric=photometric, window=window, flip=False, burned_in=bool(view_out["label"].any()), **tags
    )


# ---------------------------------------------------------------- the dataset


def generate_demo_dataset(
    out_dir: str | os.PathLike,
    patients: int = DEFAULT_PATIENTS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    large_patients: int = 0,
) -> Path:
    """Write the synthetic CMMD-layout dataset into ``out_dir``; returns out_dir.

    ``out_dir`` must be missing, empty, or an earlier demo dataset: then only the
    generator's own files are replaced, anything else in it stays. Files are written
    into a hidden sibling folder and moved into place at the end, so a cancelled or
    crashed run leaves nothing half-written (what a killed run left is removed by
    the next one); cancelling raises GenerationCancelled. ``progress(done, total)``
    counts images. The first ``large_patients`` patients are rendered at LARGE_SIZE.
    """
    out_dir = Path(out_dir)
    if isinstance(patients, bool) or int(patients) != patients or patients < 1:
        raise ValueError(f"patients must be a whole number of at least 1, not {patients!r}")
    patients = int(patients)
    h, w = int(size[0]), int(size[1])
    if h < 16 or w < 16:
        raise ValueError(f"size must be at least 16x16 pixels, not {h}x{w}")
    large_patients = int(large_patients)
    if not 0 <= large_patients <= patients:
        raise ValueError(f"large_patients must be between 0 and patients ({patients}), not {large_patients}")
    check_target(out_dir)
    import logging

    logging.getLogger("openjpeg").setLevel(logging.WARNING)  # its encoder logs every tile at INFO
    remove_stale_partials(out_dir.parent)
    work = partial_folder(out_dir)
    if work.exists():
        shutil.rmtree(work)  # ours: this process's own name
    work.mkdir(parents=True)
    total = patients * 4
    done = 0
    if progress:
        progress(0, total)
    counts: dict[str, Any] = {
        "images": 0,
        "by_label": {"benign": 0, "malignant": 0},
        "by_view": {"CC": 0, "MLO": 0},
        "by_laterality": {"L": 0, "R": 0},
        "unlabeled": 0,
    }
    clinical: list[list] = []
    breasts = {"benign": 0, "malignant": 0}
    patient_labels = {"benign": 0, "malignant": 0}
    try:
        for index in range(patients):
            patient_id = f"D1-{index + 1:04d}"
            plan = patient_plan(seed, index)
            rng = np.random.default_rng([seed, index, 11])
            shape = breast_shape(rng)
            findings = {side: plan_findings(rng, plan["labels"][side]) for side in ("L", "R")}
            clinical.extend(clinical_rows(patient_id, plan, findings, rng))
            for side in ("L", "R"):
                label = plan["labels"][side]
                if label is not None:
                    breasts["malignant" if label else "benign"] += 1
            labelled = [v for v in plan["labels"].values() if v is not None]
            patient_labels["malignant" if max(labelled) else "benign"] += 1
            study_uid = _uid(seed, patient_id, "study")
            series_uid = _uid(seed, patient_id, "series")
            series_dir = work / "CMMD" / patient_id / f"07-18-2010-NA-NA-{10000 + index:05d}" / "1.000000-NA-{:05d}".format(20000 + index)
            series_dir.mkdir(parents=True, exist_ok=True)
            view_size = LARGE_SIZE if index < large_patients else (h, w)
            instance = 0
            for side in ("R", "L"):
                for view in ("CC", "MLO"):
                    if cancel is not None and cancel.is_set():
                        raise GenerationCancelled("demo data generation cancelled")
                    instance += 1
                    view_rng = np.random.default_rng([seed, index, instance, 13])
                    k = index * 4 + instance
                    stripe = (None, None, "far", "top", None, "bottom")[(k * 3 + seed) % 6]
                    view_out = render_demo_view(
                        view_rng, view_size, view, side, shape, findings[side], label=(k + seed) % 4 != 3, stripe=stripe
                    )
                    ds = dicom_for_view(
                        view_out,
                        "MONOCHROME1" if (k * 7 + seed) % 4 == 0 else "MONOCHROME2",
                        patient_id=patient_id,
                        age=plan["age"],
                        laterality=side,
                        view=view,
                        voi_function="SIGMOID" if (k * 5 + seed) % 3 == 0 else "LINEAR",
                        transfer_syntax=_SYNTAXES[(k + seed) % len(_SYNTAXES)],
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=_uid(seed, patient_id, instance),
                        instance=instance,
                    )
                    encoded = io.BytesIO()  # written atomically: a full disk is a NoSpaceError naming the file
                    ds.save_as(encoded, enforce_file_format=True)
                    write_bytes(series_dir / f"1-{instance}.dcm", encoded.getvalue())
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
        write_clinical_table(work / CLINICAL_TABLE, clinical)
        labelled_images = counts["images"] - counts["unlabeled"]
        write_json(
            work / MANIFEST,
            {
                "generator": "arfl-studio demo-data",
                "generator_version": GENERATOR_VERSION,
                "seed": seed,
                "patients": patients,
                "size": [h, w],
                "large_patients": large_patients,
                "large_size": list(LARGE_SIZE) if large_patients else None,
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
        install(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["arfl-studio-demo", *[str(p) for p in parts]])


def read_demo_manifest(path: str | os.PathLike) -> dict | None:
    import json

    try:
        manifest = json.loads((Path(path) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def ensure_demo_dataset(
    out_dir: str | os.PathLike | None = None,
    patients: int = DEFAULT_PATIENTS,
    size: tuple[int, int] = DEFAULT_SIZE,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    large_patients: int = 0,
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
        and int(manifest.get("large_patients") or 0) == int(large_patients)
        and (out_dir / CLINICAL_TABLE).is_file()
    ):
        return out_dir
    return generate_demo_dataset(
        out_dir, patients=patients, size=size, seed=seed, progress=progress, cancel=cancel, large_patients=large_patients
    )
