"""A mammogram phantom with a known lesion, written as DICOM, and a model that looks at it.

The breast is a half ellipse against the chest wall (left edge for an L image as
stored, right edge for R), the MLO view adds a pectoral triangle, a bright text
label sits in the far background corner (outside the crop), and one bright lesion
sits at a known native (row, col). ``BrightSpotModel``'s logit grows with the
squared excess of bright pixels, so its input gradient peaks on the lesion: a map
that does not land on the lesion in native coordinates was mis-registered
(a flip, crop or resize not undone).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn


def phantom_pixels(laterality: str, view: str, shape=(300, 220), lesion=(0.42, 0.35)):
    """(pixels [0, 1], lesion (row, col), breast mask) in native orientation."""
    rows, cols = shape
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    # chest wall at column 0 (an L image); R images are mirrored at the end
    breast = ((yy - rows * 0.5) / (rows * 0.42)) ** 2 + (xx / (cols * 0.62)) ** 2 <= 1
    img = np.where(breast, 0.45 + 0.05 * np.sin(yy / 7) * np.cos(xx / 9), 0.02).astype(np.float32)
    if view == "MLO":
        pectoral = (xx < cols * 0.25 * (1 - yy / (rows * 0.45))) & breast
        img[pectoral] = 0.7
    r, c = int(lesion[0] * rows), int(lesion[1] * cols)
    img += 0.5 * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * 6.0**2)) * breast
    img[rows - 30 : rows - 12, cols - 40 : cols - 10] = 1.0  # burned-in label, far from the breast
    img = np.clip(img, 0, 1)
    if laterality == "R":
        img, breast, c = img[:, ::-1].copy(), breast[:, ::-1].copy(), cols - 1 - c
    return img, (r, c), breast


def write_phantom(path: Path, laterality: str, view: str, spacing=(0.1, 0.1), shape=(300, 220)):
    """A MONOCHROME2 MG DICOM of the phantom; returns (path, lesion (row, col), breast mask)."""
    from synthetic_dicom import mammogram_dataset

    img, lesion, breast = phantom_pixels(laterality, view, shape)
    ds = mammogram_dataset(path)
    ds.Modality, ds.PatientID, ds.PatientName = "MG", "PH-0001", "Phantom^Jane"
    ds.ImageLaterality, ds.ViewPosition = laterality, view
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = img.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    ds.WindowCenter, ds.WindowWidth = [2048, 1500], [4096, 1000]
    ds.WindowCenterWidthExplanation = ["FULL", "TISSUE"]
    ds.PixelData = np.rint(img * 4095).astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    return Path(path), lesion, breast


class BrightSpotModel(nn.Module):
    """logit = gain * mean(relu(x - level)^2) - bias: its gradient is 2 * relu(x - level), largest on the lesion."""

    def __init__(self, level: float = 0.55):
        super().__init__()
        self.level = level
        self.gain = nn.Parameter(torch.tensor(400.0))

    def forward(self, x):
        excess = torch.relu(x - self.level) ** 2
        return (self.gain * excess.mean(dim=(1, 2, 3)) - 1.0)[:, None]
