"""A small synthetic mammogram DICOM with PHI in its header, for the export and window tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def mammogram_dataset(path: Path):
    """An empty Digital Mammography For Presentation dataset (explicit VR little endian) with new
    SOP instance, study and series UIDs, to be filled and saved to ``path``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    return ds


def write_mammogram(path: Path, stored: np.ndarray, **attributes) -> Path:
    """``stored``: uint16 (rows, columns). The header carries PHI (name, dates, institution, a
    private tag) so that a test can see an output leave it out; ``attributes`` override or add."""
    ds = mammogram_dataset(path)
    ds.Modality, ds.PatientID, ds.PatientName = "MG", "SYN-0001", "Doe^Jane"
    ds.PatientBirthDate, ds.StudyDate, ds.StudyTime = "19600101", "20200202", "101010"
    ds.InstitutionName, ds.AccessionNumber, ds.ReferringPhysicianName = "General Hospital", "ACC123", "Who^Doctor"
    ds.SeriesDescription, ds.StudyDescription = "Jane Doe screening", "screening of Jane Doe"
    ds.add_new(0x00091001, "LO", "private secret")
    ds.ImageLaterality, ds.ViewPosition, ds.PatientOrientation = "L", "CC", ["P", "R"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [0.085, 0.09]
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(stored, dtype=np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return Path(path)
