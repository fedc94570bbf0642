"""Small DICOM files with chosen quirks for the data tests (built with the demo's writer)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from arfl_studio.data.demo.dataset import build_dicom


def phantom(h: int = 48, w: int = 40, chest_wall_left: bool = True) -> np.ndarray:
    """Intensity in [0, 1]: a bright half-disc of tissue on one side, dark background."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = xx if chest_wall_left else (w - 1 - xx)
    r = np.sqrt((x / (0.75 * w)) ** 2 + ((yy - h / 2) / (0.42 * h)) ** 2)
    img = np.where(r < 1.0, 0.45 + 0.4 * (1 - r), 0.0).astype(np.float32)
    img += 0.05 * np.sin(yy / 3.0) * (r < 1.0)  # some structure so codecs have work
    return np.clip(img, 0, 1)


def write_dicom(
    path: Path,
    intensity: np.ndarray | None = None,
    *,
    laterality: str = "L",
    view: str = "CC",
    photometric: str = "MONOCHROME2",
    voi: str = "LINEAR",
    syntax: str = "1.2.840.10008.1.2.1",
    patient_id: str = "P-0001",
    flip: bool = False,
    edit=None,
) -> Path:
    intensity = phantom() if intensity is None else intensity
    ds = build_dicom(
        intensity,
        patient_id=patient_id,
        age=50,
        laterality=laterality,
        view=view,
        photometric=photometric,
        voi_function=voi,
        transfer_syntax=syntax,
        study_uid="1.2.3.4",
        series_uid="1.2.3.4.1",
        # deterministic and always 9 digits: files that differ only in pixels have the same size
        sop_uid=f"1.2.3.4.1.{10**8 + zlib.crc32(f'{path}|{laterality}|{view}'.encode()) % (9 * 10**8)}",
        instance=1,
        flip=flip,
    )
    if edit is not None:
        edit(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_with_syntax(path: Path, transfer_syntax: str, *, implicit: bool = False, **kwargs) -> Path:
    """A phantom whose file meta names ``transfer_syntax`` (any UID, even one pydicom refuses
    to write), the data set encoded little-endian with explicit (or implicit) VR."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    captured = {}
    write_dicom(path, edit=lambda ds: captured.setdefault("ds", ds), **kwargs)
    ds = captured["ds"]
    meta = ds.file_meta
    meta.TransferSyntaxUID = transfer_syntax
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, implicit
    write_dataset(body, ds)
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + head.getvalue() + body.getvalue())
    return path


def die_on_crash_files(path: str):
    """A file job that kills its process for files named crash* (a decoder segfault, an OOM kill)."""
    import os

    if Path(path).name.startswith("crash"):
        os._exit(11)
    return path, "fine"


def cancel_at(step: int):
    """(cancel event, progress calls seen, progress callback that sets the event at ``step``)."""
    import threading

    cancel, seen = threading.Event(), []

    def progress(done, total):
        seen.append((done, total))
        if done == step:
            cancel.set()

    return cancel, seen, progress
