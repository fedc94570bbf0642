"""Reading one DICOM mammogram: pixels display-ready in [0, 1], tissue bright.

Order of operations (DICOM PS3.3 C.11 and PS3.4 N.2):
modality LUT (Rescale Slope/Intercept or Modality LUT Sequence) -> VOI (VOI LUT
Sequence, else Window Centre/Width with LINEAR, LINEAR_EXACT or SIGMOID, else
min-max) -> invert MONOCHROME1 so tissue is always bright.

Memory: the stored integers are converted to float32 once and every later step
works in place, so preprocessing a 3328x2560 16-bit image stays a few times its
raw size (pydicom's ``apply_windowing`` works in float64, hence our own windowing;
pydicom's functions are used for the LUT sequences).

Nothing here reads, logs or returns PatientName, birth date or other PHI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Compressed transfer syntaxes -> (what decodes it, licence, pip package).
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (MIT)",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (MIT)",  # JPEG 2000
    "1.2.840.10008.1.2.4.57": "python-gdcm (BSD)",  # JPEG lossless process 14
    "1.2.840.10008.1.2.4.70": "python-gdcm (BSD)",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.50": "python-gdcm (BSD) or pillow",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "python-gdcm (BSD)",  # JPEG extended
    "1.2.840.10008.1.2.4.80": "pyjpegls (MIT)",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls (MIT)",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.5": "numpy (pydicom's own RLE decoder)",
}

SNOMED_VIEWS = {
    "399162004": "CC",  # cranio-caudal
    "399368009": "MLO",  # medio-lateral oblique
    "399260004": "ML",  # medio-lateral
    "399352003": "LM",  # latero-medial
    "399099002": "LMO",
    "399192003": "FB",
    "399196006": "SIO",
    "399188001": "XCCL",
    "399101009": "XCCM",
    "441555000": "CV",
}

_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")


class MammogramReadError(ValueError):
    """A file that is not a usable mammogram; ``str(err)`` is a one-line reason."""


@dataclass
class Mammogram:
    pixels: np.ndarray  # float32 (rows, columns) in [0, 1], tissue bright
    laterality: str | None  # "L" | "R" | None
    view: str | None  # "CC", "MLO", ...
    patient_id: str | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None  # mm (row, column)
    presentation_intent: str | None  # "FOR PRESENTATION" | "FOR PROCESSING" | None
    photometric_interpretation: str | None = None
    transfer_syntax: str | None = None


@dataclass
class HeaderInfo:
    """What a header-only read tells (no pixels decoded)."""

    patient_id: str | None
    laterality: str | None
    view: str | None
    rows: int
    columns: int
    transfer_syntax: str | None
    presentation_intent: str | None
    photometric_interpretation: str | None


# ---------------------------------------------------------------- header fields


def _text(ds: Any, keyword: str) -> str | None:
    try:
        value = ds.get(keyword)
    except Exception:  # a malformed element must not stop anything
        return None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def laterality_of(ds: Any) -> str | None:
    """ImageLaterality (0020,0062), else Laterality (0020,0060); "L"/"R" or None."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = _text(ds, keyword)
        if value:
            value = value.upper()[:1]
            if value in ("L", "R"):
                return value
    return None


def view_of(ds: Any) -> str | None:
    """ViewPosition, else the SNOMED code in ViewCodeSequence (how CMMD stores it)."""
    value = _text(ds, "ViewPosition")
    if value:
        return value.upper()
    try:
        seq = ds.get("ViewCodeSequence")
        for item in seq or ():
            code = str(item.get("CodeValue", "")).strip()
            if code in SNOMED_VIEWS:
                return SNOMED_VIEWS[code]
            meaning = str(item.get("CodeMeaning", "")).lower()
            if "cranio" in meaning:
                return "CC"
            if "medio-lateral oblique" in meaning or "mediolateral oblique" in meaning:
                return "MLO"
    except Exception:
        return None
    return None


def _transfer_syntax(ds: Any) -> str | None:
    try:
        return str(ds.file_meta.TransferSyntaxUID)
    except Exception:
        return None


def missing_decoder(transfer_syntax: str | None) -> str | None:
    """None when pixels in this transfer syntax can be decoded, else a reason naming the package."""
    if not transfer_syntax:
        return None
    from pydicom.uid import UID

    uid = UID(transfer_syntax)
    if not uid.is_compressed:
        return None
    try:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(uid)
    except Exception:
        return f"no decoder exists for transfer syntax {uid.name or uid}"
    if decoder.is_available:
        return None
    package = DECODER_PACKAGES.get(str(uid), "a pydicom decoder plugin")
    return f"cannot decode {uid.name}: install {package.split(' (')[0]} (pip install {package.split(' (')[0].split(' or ')[0]})"


def _existing_file(path: str | os.PathLike) -> Path:
    """The path, if it is a non-empty file; else MammogramReadError with the reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise MammogramReadError(f"cannot open file: {err.strerror or err}") from None
    if path.is_dir():
        raise MammogramReadError("a folder, not a file")
    if size == 0:
        raise MammogramReadError("empty file")
    return path


def _dcmread(path: str | os.PathLike, **kwargs: Any):
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = _existing_file(path)
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        pass
    except Exception as err:
        raise MammogramReadError(f"unreadable DICOM header: {_one_line(err)}") from None
    # No preamble/"DICM": accept only if a forced read finds an image header.
    try:
        ds = pydicom.dcmread(path, force=True, **kwargs)
    except Exception as err:
        raise MammogramReadError(f"not a DICOM file ({_one_line(err)})") from None
    if "Rows" not in ds or "Columns" not in ds:
        raise MammogramReadError("not a DICOM file")
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ImplicitVRLittleEndian

        meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        # A raw data set without meta: pydicom guessed the encoding; default like pydicom.
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
        ds.file_meta = meta
    return ds


def _samples(ds: Any) -> int:
    try:
        return int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _colour_reason(ds: Any, samples: int) -> str:
    return f"colour image ({samples} samples, {_text(ds, 'PhotometricInterpretation') or '?'}) is not a mammogram"


def _decode_reason(ts: str | None, ds: Any, err: BaseException) -> str:
    text = _one_line(err)
    if ts in ("1.2.840.10008.1.2.4.51",) and "12-bit" in text:
        return (
            "cannot decode 12-bit JPEG Extended: only pylibjpeg-libjpeg (GPLv3, not shipped) "
            "decodes it; pip install pylibjpeg-libjpeg if its licence suits you"
        )
    if "exceptions were raised by all available plugins" in text:
        text = text.split("plugins:", 1)[-1].strip()
    return f"cannot decode pixel data: {text}"[:200]


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def read_header(path: str | os.PathLike) -> HeaderInfo:
    """Header-only read (``stop_before_pixels``); raises MammogramReadError with a reason.

    Checks what can be checked without decoding: an image header is present, the
    pixel data element exists, native pixel data is complete, and a decoder for a
    compressed transfer syntax is installed.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = _existing_file(path)
    forced = False
    try:
        with open(path, "rb") as handle:
            try:
                ds = pydicom.dcmread(handle, stop_before_pixels=True)
            except InvalidDicomError:
                handle.seek(0)
                forced = True
                ds = pydicom.dcmread(handle, stop_before_pixels=True, force=True)
            pixel_pos = handle.tell()
            handle.seek(pixel_pos)
            tag = handle.read(6)
    except MammogramReadError:
        raise
    except Exception as err:
        raise MammogramReadError(f"unreadable DICOM header: {_one_line(err)}") from None
    try:
        has_rows = "Rows" in ds and "Columns" in ds
    except Exception:
        has_rows = False
    if forced and not has_rows:
        raise MammogramReadError("not a DICOM file")
    ts = _transfer_syntax(ds)
    deflated = ts == "1.2.840.10008.1.2.1.99"  # positions are in the inflated stream
    if not deflated and tag[:4] not in _PIXEL_TAGS:
        raise MammogramReadError("no pixel data")
    if not has_rows:
        raise MammogramReadError("no image attributes (Rows/Columns)")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception:
        raise MammogramReadError("invalid Rows/Columns") from None
    if rows <= 0 or columns <= 0:
        raise MammogramReadError(f"invalid image size {rows}x{columns}")
    samples = _samples(ds)
    if samples != 1:
        raise MammogramReadError(_colour_reason(ds, samples))
    if forced and ts is None:
        ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
    reason = missing_decoder(ts)
    if reason:
        raise MammogramReadError(reason)
    if ts is not None:
        from pydicom.uid import UID

        if not UID(ts).is_compressed and not deflated:
            try:
                bits = int(ds.BitsAllocated)
                frames = int(ds.get("NumberOfFrames", 1) or 1)
                expected = rows * columns * samples * frames * bits // 8
                explicit = tag[4:6] in (b"OB", b"OW", b"OD", b"OF", b"UN")
                available = path.stat().st_size - pixel_pos - (12 if explicit else 8)
                if expected > 0 and available < expected - 1:
                    raise MammogramReadError(
                        f"truncated pixel data ({max(available, 0)} of {expected} bytes)"
                    )
            except MammogramReadError:
                raise
            except Exception:
                pass  # leave it to the decoder
    return HeaderInfo(
        patient_id=_text(ds, "PatientID"),
        laterality=laterality_of(ds),
        view=view_of(ds),
        rows=rows,
        columns=columns,
        transfer_syntax=ts,
        presentation_intent=_text(ds, "PresentationIntentType"),
        photometric_interpretation=_text(ds, "PhotometricInterpretation"),
    )


# ---------------------------------------------------------------- pixels


def _first(value: Any) -> float:
    try:
        return float(value[0]) if not isinstance(value, (str, bytes)) and hasattr(value, "__getitem__") else float(value)
    except TypeError:
        return float(value)


def apply_window(arr: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Window centre/width to [0, 1] in place on a float32 array (PS3.3 C.11.2.1.2)."""
    function = (function or "LINEAR").strip().upper()
    if function == "SIGMOID":
        if width <= 0:
            raise MammogramReadError(f"invalid window width {width} for SIGMOID")
        arr -= center
        arr *= -4.0 / width
        np.clip(arr, -80.0, 80.0, out=arr)  # exp overflow guard
        np.exp(arr, out=arr)
        arr += 1.0
        np.reciprocal(arr, out=arr)
        return arr
    if function == "LINEAR_EXACT":
        if width <= 0:
            raise MammogramReadError(f"invalid window width {width} for LINEAR_EXACT")
        low, span = center - width / 2.0, width
    else:  # LINEAR (the default, and what unknown functions fall back to)
        if width < 1:
            raise MammogramReadError(f"invalid window width {width} for LINEAR")
        low = center - 0.5 - (width - 1) / 2.0
        span = max(width - 1.0, 1e-6)
    arr -= low
    arr *= 1.0 / span
    np.clip(arr, 0.0, 1.0, out=arr)
    return arr


def _min_max(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if not np.isfinite(lo) or not np.isfinite(hi):
        np.nan_to_num(arr, copy=False)
        lo, hi = float(arr.min()), float(arr.max())
    arr -= lo
    if hi > lo:
        arr *= 1.0 / (hi - lo)
    return arr


def pixels_for_display(ds: Any, arr: np.ndarray) -> np.ndarray:
    """Modality LUT -> VOI -> MONOCHROME1 inversion; float32 in [0, 1], tissue bright."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    # Modality LUT
    if "ModalityLUTSequence" in ds and ds.ModalityLUTSequence:
        arr = np.asarray(apply_modality_lut(arr, ds)).astype(np.float32, copy=False)
    else:
        out = arr.astype(np.float32)
        del arr
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if slope != 1.0:
            out *= slope
        if intercept != 0.0:
            out += intercept
        arr = out
    # VOI
    done = False
    if "VOILUTSequence" in ds and ds.VOILUTSequence:
        try:
            lut_item = ds.VOILUTSequence[0]
            bits = int(lut_item.LUTDescriptor[2])
            as_int = np.rint(arr).astype(np.int32) if arr.dtype.kind == "f" else arr
            out = np.asarray(apply_voi_lut(as_int, ds, index=0, prefer_lut=True))
            arr = out.astype(np.float32, copy=False)
            arr *= 1.0 / float(2**bits - 1 if bits > 0 else max(arr.max(), 1))
            np.clip(arr, 0.0, 1.0, out=arr)
            done = True
        except Exception:
            done = False  # malformed LUT: fall back to the window or min-max
    if not done and "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
            function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR")
            if np.isfinite(center) and np.isfinite(width) and width > 0:
                arr = apply_window(arr, center, width, function)
                done = True
        except MammogramReadError:
            done = False
        except (TypeError, ValueError, IndexError):
            done = False
    if not done:
        arr = _min_max(arr)
    # Tissue bright
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        np.subtract(1.0, arr, out=arr)
    np.clip(arr, 0.0, 1.0, out=arr)
    return arr


def read_mammogram(path: str | os.PathLike) -> Mammogram:
    """Read one mammogram; raises MammogramReadError (one-line reason) for a bad file."""
    ds = _dcmread(path)
    try:
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise MammogramReadError("no pixel data")
        if "Rows" not in ds or "Columns" not in ds:
            raise MammogramReadError("no image attributes (Rows/Columns)")
        ts = _transfer_syntax(ds)
        reason = missing_decoder(ts)
        if reason:
            raise MammogramReadError(reason)
        samples = _samples(ds)
        if samples != 1:
            raise MammogramReadError(_colour_reason(ds, samples))
        try:
            frames = int(ds.get("NumberOfFrames", 1) or 1)
        except (TypeError, ValueError):
            frames = 1
        try:
            from pydicom.pixels import pixel_array

            # pixel_array(ds) does not keep a copy on the data set (ds.pixel_array would);
            # mammograms are single-frame: of a multi-frame file take the first frame.
            arr = pixel_array(ds, index=0 if frames > 1 else None)
        except MammogramReadError:
            raise
        except Exception as err:
            raise MammogramReadError(_decode_reason(ts, ds, err)) from None
        arr = np.asarray(arr)
        for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                del ds[keyword]  # free the encoded bytes before the float32 copy
        if arr.ndim != 2 or arr.size == 0:
            raise MammogramReadError(f"unexpected pixel array shape {arr.shape}")
        try:
            pixels = pixels_for_display(ds, arr)
        except MammogramReadError:
            raise
        except Exception as err:
            raise MammogramReadError(f"cannot apply LUTs: {_one_line(err)}") from None
        del arr
        spacing = None
        for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
            try:
                value = ds.get(keyword)
                if value is not None and len(value) == 2:
                    spacing = (float(value[0]), float(value[1]))
                    break
            except Exception:
                continue
        return Mammogram(
            pixels=np.ascontiguousarray(pixels, dtype=np.float32),
            laterality=laterality_of(ds),
            view=view_of(ds),
            patient_id=_text(ds, "PatientID"),
            rows=int(pixels.shape[0]),
            columns=int(pixels.shape[1]),
            pixel_spacing=spacing,
            presentation_intent=_text(ds, "PresentationIntentType"),
            photometric_interpretation=_text(ds, "PhotometricInterpretation"),
            transfer_syntax=ts,
        )
    except MammogramReadError:
        raise
    except Exception as err:  # anything else a broken file can raise
        raise MammogramReadError(f"unreadable image: {_one_line(err)}") from None
