"""The demo's DICOM writer: MG "for presentation" data sets with tags like CMMD's.

12 bits stored in 16; ViewPosition empty and the view coded in ViewCodeSequence (as
CMMD does); MONOCHROME1 or MONOCHROME2; a window centre/width with a LINEAR or
SIGMOID VOI function (the full 12-bit range by default, or one fitted to the
tissue as Hologic writes them: ``tissue_window``); any transfer syntax pydicom can
encode.
"""

from __future__ import annotations

import numpy as np

VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
LATERALITY_CODES = {"L": ("T-04030", "Left breast"), "R": ("T-04020", "Right breast")}
STORED_MAX = 4095


def stored_values(intensity: np.ndarray, photometric: str) -> np.ndarray:
    """Intensity (tissue bright, [0, 1]) to 12-bit stored values; MONOCHROME1 inverts."""
    stored = np.rint(np.clip(intensity, 0.0, 1.0) * 3900.0 + 60.0).astype(np.uint16)
    return (STORED_MAX - stored).astype(np.uint16) if photometric == "MONOCHROME1" else stored


def tissue_window(stored: np.ndarray, breast: np.ndarray) -> tuple[float, float]:
    """(centre, width) spanning the breast's stored values, background left outside."""
    values = stored[breast] if breast.any() else stored.ravel()
    low, high = np.percentile(values, [2.0, 99.5])
    return float(round((low + high) / 2)), float(max(64.0, round((high - low) * 1.15)))


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


FIELD_HEIGHT_MM = 240.64  # the demo detector's field (rows): 256 rows at 0.94 mm, 4096 at 0.059 mm


def demo_pixel_spacing(shape: tuple[int, ...]) -> float:
    """mm per (square) pixel: the same breast-sized field whatever the image size, so a full-size
    demo image is not a breast metres tall."""
    return round(FIELD_HEIGHT_MM / int(shape[0]), 5)


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
    window: tuple[float, float] | None = None,
    burned_in: bool = False,
):
    """A MG "for presentation" data set with 12-bit pixels (tags like CMMD's).

    ``flip`` mirrors the image left-right first; ``window`` (centre, width) defaults
    to the full 12-bit range; ``burned_in`` says the pixels carry a text label.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, UID

    img = intensity[:, ::-1] if flip else intensity
    stored = stored_values(img, photometric)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.1.2")  # Digital Mammography - For Presentation
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    # pydicom takes None for a data set not read from a file; its annotation omits it
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)  # type: ignore[arg-type]
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
    spacing = demo_pixel_spacing(stored.shape)
    ds.PixelSpacing = [spacing, spacing]
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    center, width = window if window is not None else (2048.0, 4096.0)
    ds.WindowCenter = center
    ds.WindowWidth = width
    ds.VOILUTFunction = voi_function
    ds.PresentationLUTShape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    ds.BurnedInAnnotation = "YES" if burned_in else "NO"
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    if transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(UID(transfer_syntax), generate_instance_uid=False)  # keep UIDs deterministic
    return ds
