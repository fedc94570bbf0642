"""An overlay as a DICOM Secondary Capture, to open beside the mammogram in OHIF, Weasis or a PACS.

The picture (the mammogram through its window with the saliency or δ map blended in, RGB, on the
source's own pixel grid) becomes an RGB Secondary Capture Image in the source's Study: the same
Study Instance UID and pseudonymous Patient ID, a new Series and SOP Instance UID, the source
image referenced (ReferencedImageSequence and SourceImageSequence, its series in the Common Instance
Reference module's ReferencedSeriesSequence), the source's rows, columns
and pixel spacing, and the method, fold and ε in the Series Description.

De-identification is the one the app applies to every output (``deid.is_phi``, PS3.15 basic
profile): the data set is built from a short list of attributes, never copied from the source,
and :func:`profile_violations` checks it before it is written. Only two things the profile's
basic form would change are kept, on purpose and said in the file (Deidentification Method):
the UIDs of the study and of the source image (the profile's Retain UIDs Option, PS3.15 E.3.9:
without them no viewer can put the overlay beside its mammogram) and the pseudonymous Patient ID
(as in every table of the app); the Series Description is written, but it is ours (overlay,
method, fold, ε), never the source's. The type 2 attributes the profile empties (patient name, study
date, accession number, ...) are present and empty.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture Image Storage
DESCRIPTION_LENGTH = 64  # Series Description is a LO
# Attributes in the profile's table written on purpose: the UIDs (Retain UIDs Option; new UIDs for
# our own series and instance), and the Series Description, which the profile removes because a
# source's may name the patient, but which is ours: only the overlay, method, fold and ε.
RETAINED = frozenset(
    {
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "ReferencedSOPInstanceUID",
        "ReferencedImageSequence",
        "SourceImageSequence",
        "SeriesDescription",
    }
)
# Type 2 attributes the profile empties (Z): present, without a value
EMPTIED = (
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
# Harmless attributes of the source that help a viewer hang the overlay (laterality, view, orientation)
COPIED = ("Laterality", "ImageLaterality", "ViewPosition", "PatientOrientation", "BodyPartExamined", "BurnedInAnnotation")


def series_description(overlay: str, method: str | None, fold: int | str | None, eps: float | None) -> str:
    """``ARFL saliency gradient · method B · fold 2 · ε 0.01``, cut to the 64 characters a LO holds
    (the overlay's name is shortened first: method, fold and ε always fit). ``fold`` as the user
    counts folds (from 1), or "final"."""
    tail = " · ".join(
        p
        for p in (
            f"method {method}" if method else "",
            f"fold {fold}" if fold is not None else "",
            f"ε {eps:g}" if eps is not None else "",
        )
        if p
    )
    head = f"ARFL {overlay}".strip()
    room = DESCRIPTION_LENGTH - len(tail) - (3 if tail else 0)
    if len(head) > room:
        head = head[: max(room - 1, 4)].rstrip() + "…"
    return (f"{head} · {tail}" if tail else head)[:DESCRIPTION_LENGTH]


def _source_spacing(source: Any) -> list[float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):  # the reader's order: what the viewer measures with
        value = source.get(keyword)
        if value is not None and len(value) == 2:
            return [float(v) for v in value]
    return None


def _reference(source: Any):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = source.SOPClassUID
    item.ReferencedSOPInstanceUID = source.SOPInstanceUID
    return item


def secondary_capture(
    source_path: str | os.PathLike,
    rgb: np.ndarray,
    description: str,
    *,
    series_uid: str | None = None,
    series_number: int = 900,
    instance_number: int = 1,
):
    """The Secondary Capture data set of ``rgb`` ((rows, columns, 3) uint8 on the source's grid)
    derived from the DICOM at ``source_path``; raises ValueError when they do not fit together."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from arfl_studio import __version__

    source = pydicom.dcmread(str(source_path), stop_before_pixels=True)
    rgb = np.ascontiguousarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"a Secondary Capture needs uint8 RGB (rows, columns, 3), not {rgb.dtype} {rgb.shape}")
    if "SOPInstanceUID" not in source or "SOPClassUID" not in source:
        raise ValueError(f"{Path(source_path).name}: no SOP Instance or SOP Class UID to refer to")
    if (int(source.Rows), int(source.Columns)) != rgb.shape[:2]:
        raise ValueError(f"the overlay is {rgb.shape[1]}x{rgb.shape[0]} px, the source image {source.Columns}x{source.Rows}")

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: ε in the description
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = str(source.get("PatientID", "") or "")
    # a source without a study (a stripped header): one made from its SOP Instance UID, the same for every export of it
    ds.StudyInstanceUID = source.get("StudyInstanceUID") or generate_uid(entropy_srcs=["study of", str(source.SOPInstanceUID)])
    for keyword in EMPTIED:
        setattr(ds, keyword, "")
    ds.Modality = "OT"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.SeriesNumber = int(series_number)
    ds.SeriesDescription = description[:DESCRIPTION_LENGTH]
    ds.InstanceNumber = int(instance_number)
    ds.Manufacturer = "ARFL Studio"
    ds.ConversionType = "WSD"  # workstation
    ds.SecondaryCaptureDeviceManufacturer = "ARFL Studio"
    ds.SecondaryCaptureDeviceSoftwareVersions = __version__
    ds.ImageType = ["DERIVED", "SECONDARY"]
    for keyword in COPIED:
        value = source.get(keyword)
        if value not in (None, ""):
            setattr(ds, keyword, value)
    ds.ReferencedImageSequence = Sequence([_reference(source)])
    ds.SourceImageSequence = Sequence([_reference(source)])
    # Common Instance Reference module (type 1C once another instance is referenced): the series
    # that holds the source, so a viewer (and highdicom) can resolve the reference within the study
    series = Dataset()
    series.SeriesInstanceUID = source.get("SeriesInstanceUID") or generate_uid(entropy_srcs=["series of", str(source.SOPInstanceUID)])
    series.ReferencedInstanceSequence = Sequence([_reference(source)])
    ds.ReferencedSeriesSequence = Sequence([series])
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = ["PS3.15 basic profile, Retain UIDs Option", "pseudonymous Patient ID kept"]
    ds.DeidentificationMethodCodeSequence = Sequence(
        [_code("113100", "Basic Application Confidentiality Profile"), _code("113110", "Retain UIDs Option")]
    )
    ds.Rows, ds.Columns = rgb.shape[:2]
    spacing = _source_spacing(source)
    if spacing is not None:
        ds.PixelSpacing = spacing
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()

    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    problems = profile_violations(ds)
    if problems:  # a safety net: the list above is short, but a source may hold surprises
        raise ValueError(f"the export would carry attributes the de-identification profile removes: {', '.join(problems)}")
    return ds


def _code(value: str, meaning: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", meaning
    return item


def profile_violations(ds: Any) -> list[str]:
    """Keywords (or tags) in ``ds``, at any depth, that the app's PS3.15 rule (``deid.is_phi``) hides
    and that are neither empty nor a UID kept under the Retain UIDs Option: [] for a clean data set."""
    from arfl_studio.data.dicom.deid import is_phi

    found = []
    for elem in ds.iterall():
        name = elem.keyword or f"({elem.tag.group:04X},{elem.tag.element:04X})"
        if elem.keyword in RETAINED or not is_phi(elem.tag, elem.VR):
            continue
        if elem.VR != "SQ" and elem.value in (None, "", b""):
            continue  # emptied (Z)
        found.append(name)
    return found


def write_secondary_capture(path: str | os.PathLike, ds) -> Path:
    """Write ``ds`` (from :func:`secondary_capture`) to exactly ``path``, atomically."""
    from arfl_studio import atomic

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return atomic.write_bytes(path, buf.getvalue())
