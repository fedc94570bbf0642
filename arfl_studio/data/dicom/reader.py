"""Reading one DICOM mammogram: what its header says, and its pixels display-ready in [0, 1].

``read_header`` reads the header only (``stop_before_pixels``) and decides whether a file is a
usable mammogram: an image of at least MIN_SIDE px per side, grey (not RGB/YBR/PALETTE COLOR),
one frame (or a chosen frame), in a transfer syntax this installation decodes, with finite
rescale values; and, as policy, a mammogram (not CT, MR, ...) FOR PRESENTATION. ``read_mammogram``
decodes the pixels and applies the LUT pipeline (``arfl_studio.data.dicom.lut``); it rejects what only
the pixels show (NaN/inf values). Each refusal is a MammogramReadError with a one-line reason and
a category (``arfl_studio.data.datasets.reasons``).

Nothing here reads, logs or returns PatientName, birth date or other PHI.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from arfl_studio.data.dicom.decoders import DECODER_PACKAGES, check_jpeg2000_start, route_plugin_failures, transfer_syntax_problem
from arfl_studio.data.dicom.lut import DisplayScale, apply_window, display_pixels, pixels_for_display, rescale_problem, rescale_values
from arfl_studio.data.datasets.reasons import MIN_SIDE, MammogramReadError, max_pixels
from arfl_studio.data.datasets.views import MAMMOGRAPHY_VIEWS, view_family, view_of

__all__ = [
    "DECODER_PACKAGES",
    "HeaderInfo",
    "MIN_SIDE",
    "Mammogram",
    "MammogramReadError",
    "apply_window",
    "laterality_of",
    "missing_decoder",
    "pixels_for_display",
    "read_header",
    "read_mammogram",
    "view_of",
]

_PIXEL_TAGS = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10", b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# SOP classes that are mammograms whatever the Modality says, and the FOR PROCESSING ones.
MAMMOGRAPHY_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image - For Processing
}
FOR_PROCESSING_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.3.1",  # Digital Intra-Oral X-Ray Image - For Processing
}
# Projection radiography modalities that hold a mammogram when the header shows a breast;
# OT/SC and no Modality at all cover digitised films and stripped headers.
_MAYBE_BREAST_MODALITIES = {"DX", "CR", "OT", "SC", ""}


@dataclass
class Mammogram:
    pixels: np.ndarray  # float32 (rows, columns) in [0, 1], tissue bright
    laterality: str | None  # "L" | "R" | None
    view: str | None  # exact view: "CC", "MLO", "XCCL", ...
    patient_id: str | None
    rows: int
    columns: int
    pixel_spacing: tuple[float, float] | None  # mm (row, column)
    presentation_intent: str | None  # "FOR PRESENTATION" | "FOR PROCESSING" | None
    photometric_interpretation: str | None = None
    transfer_syntax: str | None = None
    display_scale: DisplayScale | None = None  # modality value <-> pixels (lut.DisplayScale); None: no line

    @property
    def view_family(self) -> str | None:
        return view_family(self.view)


@dataclass
class HeaderInfo:
    """What a header-only read tells (no pixels decoded)."""

    patient_id: str | None
    laterality: str | None
    view: str | None  # exact view
    rows: int
    columns: int
    transfer_syntax: str | None
    presentation_intent: str | None
    photometric_interpretation: str | None
    modality: str | None = None
    frames: int = 1
    float_pixels: bool = False  # Float/Double Float Pixel Data: only decoding can tell if finite

    @property
    def view_family(self) -> str | None:
        return view_family(self.view)


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


def _transfer_syntax(ds: Any) -> str | None:
    try:
        return str(ds.file_meta.TransferSyntaxUID)
    except Exception:
        return None


def _int(ds: Any, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword, default)
        return int(value if value not in (None, "") else default)
    except (TypeError, ValueError):
        return default


def missing_decoder(transfer_syntax: str | None, bits_stored: int | None = None) -> str | None:
    """None when pixels in this transfer syntax decode here, else the reason (kept for callers)."""
    return transfer_syntax_problem(transfer_syntax, bits_stored)


@functools.lru_cache(maxsize=64)
def _syntax_problem(transfer_syntax: str | None, over_8_bits: bool) -> str | None:
    """``transfer_syntax_problem`` once per syntax and depth: the installed plugins do not
    change while a scan runs, and asking the registry for each of 100,000 files shows."""
    return transfer_syntax_problem(transfer_syntax, 12 if over_8_bits else 8)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# ---------------------------------------------------------------- checks


def mammogram_problem(ds: Any) -> str | None:
    """None for a mammogram: Modality MG, or DX/CR (also OT/SC/none: digitised film, stripped
    headers) whose BodyPartExamined is BREAST, whose view is a mammography view or whose SOP
    class is Digital Mammography. Another modality (CT, MR, US, ...) is never a mammogram."""
    modality = (_text(ds, "Modality") or "").upper()
    if modality == "MG":
        return None
    body = (_text(ds, "BodyPartExamined") or "").upper()
    if modality in _MAYBE_BREAST_MODALITIES and (
        body == "BREAST" or view_of(ds) in MAMMOGRAPHY_VIEWS or _text(ds, "SOPClassUID") in MAMMOGRAPHY_SOP_CLASSES
    ):
        return None
    detail = f"Modality {modality}" if modality else "no Modality"
    if body:
        detail += f", body part {body}"
    return f"not a mammogram ({detail})"


def for_processing(ds: Any) -> bool:
    intent = (_text(ds, "PresentationIntentType") or "").upper()
    return intent == "FOR PROCESSING" or _text(ds, "SOPClassUID") in FOR_PROCESSING_SOP_CLASSES


def _image_checks(ds: Any, ts: str | None, frame: int | None) -> int:
    """Checks that need no pixels; returns the number of frames. Raises MammogramReadError."""
    if "Rows" not in ds or "Columns" not in ds:
        raise MammogramReadError("no image attributes (Rows/Columns)")
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception:
        raise MammogramReadError("invalid Rows/Columns") from None
    if rows <= 0 or columns <= 0:
        raise MammogramReadError(f"invalid image size {rows}x{columns}")
    samples = _int(ds, "SamplesPerPixel", 1)
    photometric = (_text(ds, "PhotometricInterpretation") or "").upper()
    if samples != 1 or photometric.startswith(("RGB", "YBR", "PALETTE", "ARGB", "CMYK", "HSV")):
        raise MammogramReadError(
            f"colour image ({photometric or '?'}, {samples} sample{'s' if samples != 1 else ''} per pixel) is not a mammogram", "colour"
        )
    if photometric not in ("", "MONOCHROME1", "MONOCHROME2"):
        raise MammogramReadError(f"unsupported photometric interpretation {photometric}", "colour")
    if rows < MIN_SIDE or columns < MIN_SIDE:
        raise MammogramReadError(f"image too small ({columns}x{rows} px; at least {MIN_SIDE} px per side)", "too_small")
    frames = max(_int(ds, "NumberOfFrames", 1), 1)
    if frames > 1 and frame is None:
        raise MammogramReadError(f"multi-frame image ({frames} frames, e.g. tomosynthesis); no frame chosen", "multi_frame")
    if frames > 1 and frame is not None and not 1 <= frame <= frames:
        raise MammogramReadError(f"frame {frame} chosen but the image has frames 1-{frames}", "multi_frame")
    limit = max_pixels()
    if rows * columns * frames > limit:  # before decoding: a huge image would take minutes and gigabytes
        size = f"{columns}x{rows}" + (f"x{frames} frames" if frames > 1 else "")
        raise MammogramReadError(
            f"image too large ({size} = {rows * columns * frames / 1e6:.0f} megapixels; the "
            f"limit is {limit / 1e6:g}, set ARFL_MAX_PIXELS to change it)",
            "too_large",
        )
    problem = _syntax_problem(ts, _int(ds, "BitsStored", 0) > 8)
    if problem:
        raise MammogramReadError(problem, "undecodable")
    # Refused before decoding: a rescale that cannot give a usable image over the stored range.
    slope, intercept = rescale_values(ds)
    bits = min(max(_int(ds, "BitsStored", 16), 1), 32)
    low, high = (-(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1) if _int(ds, "PixelRepresentation", 0) else (0.0, 2.0**bits - 1)
    problem = rescale_problem(slope, intercept, low, high)
    if problem:
        raise MammogramReadError(problem, "non_finite")
    return frames


def _policy_checks(ds: Any, include_non_mammograms: bool, include_for_processing: bool) -> None:
    if not include_non_mammograms:
        problem = mammogram_problem(ds)
        if problem:
            raise MammogramReadError(problem, "not_mammogram")
    if not include_for_processing and for_processing(ds):
        raise MammogramReadError("FOR PROCESSING image (raw detector data, not for display)", "for_processing")


# ---------------------------------------------------------------- reading


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


def _syntax_of_unreadable(path: Path, err: BaseException) -> MammogramReadError | None:
    """When the data set cannot be parsed, the transfer syntax often tells why."""
    try:
        from pydicom.filereader import read_file_meta_info

        ts = str(read_file_meta_info(path).TransferSyntaxUID)
    except Exception:
        return None
    if ts == "1.2.840.10008.1.2.1.99":
        return MammogramReadError(f"damaged Deflated Explicit VR Little Endian data set ({ts}): {_one_line(err)}")
    problem = transfer_syntax_problem(ts)
    return MammogramReadError(problem, "undecodable") if problem else None


def _add_missing_meta(ds: Any) -> None:
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        from pydicom.dataset import FileMetaDataset
        from pydicom.uid import ImplicitVRLittleEndian

        meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        # A raw data set without meta: pydicom guessed the encoding; default like pydicom.
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
        ds.file_meta = meta


def _dcmread(path: str | os.PathLike, **kwargs: Any):
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = _existing_file(path)
    try:
        return pydicom.dcmread(path, **kwargs)
    except InvalidDicomError:
        pass
    except Exception as err:
        problem = _syntax_of_unreadable(path, err)
        if problem:
            raise problem from None
        raise MammogramReadError(f"unreadable DICOM header: {_one_line(err)}") from None
    # No preamble/"DICM": accept only if a forced read finds an image header.
    try:
        ds = pydicom.dcmread(path, force=True, **kwargs)
    except Exception as err:
        raise MammogramReadError(f"not a DICOM file ({_one_line(err)})") from None
    if "Rows" not in ds or "Columns" not in ds:
        raise MammogramReadError("not a DICOM file")
    _add_missing_meta(ds)
    return ds


def read_header(
    path: str | os.PathLike,
    *,
    include_non_mammograms: bool = False,
    include_for_processing: bool = False,
    frame: int | None = None,
) -> HeaderInfo:
    """Header-only read (``stop_before_pixels``); raises MammogramReadError with a reason.

    Checks what can be checked without decoding (see the module docstring), including that
    the pixel data element exists, native pixel data is complete, and a decoder for the
    transfer syntax is installed. ``frame`` (1-based, as DICOM counts frames) allows
    multi-frame files; the two ``include_*`` options turn off the policy checks.
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
            tag = handle.read(6)
    except Exception as err:
        problem = _syntax_of_unreadable(path, err)
        if problem:
            raise problem from None
        raise MammogramReadError(f"unreadable DICOM header: {_one_line(err)}") from None
    try:
        has_rows = "Rows" in ds and "Columns" in ds
    except Exception:
        has_rows = False
    if forced and not has_rows:
        raise MammogramReadError("not a DICOM file")
    ts = _transfer_syntax(ds)
    if forced and ts is None:
        ts = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
    deflated = ts == "1.2.840.10008.1.2.1.99"  # positions are in the inflated stream
    if not deflated and tag[:4] not in _PIXEL_TAGS:
        syntax_problem = transfer_syntax_problem(ts)
        if syntax_problem:  # an unknown syntax can hide the pixel element from pydicom's parser
            raise MammogramReadError(syntax_problem, "undecodable")
        raise MammogramReadError("no pixel data")
    frames = _image_checks(ds, ts, frame)
    _policy_checks(ds, include_non_mammograms, include_for_processing)
    rows, columns = int(ds.Rows), int(ds.Columns)
    if ts is not None and not deflated:
        from pydicom.uid import UID

        if not UID(ts).is_compressed:
            try:
                bits = int(ds.BitsAllocated)
                expected = rows * columns * frames * bits // 8
                explicit = tag[4:6] in (b"OB", b"OW", b"OD", b"OF", b"UN")
                available = path.stat().st_size - pixel_pos - (12 if explicit else 8)
                if expected > 0 and available < expected - 1:
                    raise MammogramReadError(f"truncated pixel data ({max(available, 0)} of {expected} bytes)")
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
        modality=_text(ds, "Modality"),
        frames=frames,
        float_pixels=tag[:4] in (b"\xe0\x7f\x08\x00", b"\xe0\x7f\x09\x00"),
    )


def _decode_reason(ts: str | None, err: BaseException) -> str:
    text = _one_line(err)
    if "exceptions were raised by all available plugins" in text:
        text = text.split("plugins:", 1)[-1].strip()
    return f"cannot decode pixel data: {text}"[:200]


def _check_finite(arr: np.ndarray, where: str) -> None:
    if arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise MammogramReadError(f"{bad} non-finite pixel values (NaN/inf) {where}", "non_finite")


def read_mammogram(path: str | os.PathLike, *, frame: int | None = None, clip: bool = True) -> Mammogram:
    """Read one mammogram; raises MammogramReadError (one-line reason, category) for a bad file.
    ``clip=False``: pixels a linear window puts outside [0, 1] keep their values (for a viewer).

    ``frame`` (1-based) chooses one frame of a multi-frame file; without it a multi-frame
    file is refused rather than silently read as its first frame. The policy checks of
    ``read_header`` (mammogram, FOR PRESENTATION) are the scan's business, not done here.
    """
    route_plugin_failures()  # each plugin's failure would print a traceback; the reason says it once
    ds = _dcmread(path)
    try:
        if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
            raise MammogramReadError("no pixel data")
        ts = _transfer_syntax(ds)
        frames = _image_checks(ds, ts, frame)
        check_jpeg2000_start(ds, ts)
        try:
            from pydicom.pixels import pixel_array

            # pixel_array(ds) does not keep a copy on the data set (ds.pixel_array would).
            arr = pixel_array(ds, index=(frame - 1) if frames > 1 and frame is not None else None)
        except MammogramReadError:
            raise
        except Exception as err:
            raise MammogramReadError(_decode_reason(ts, err), "undecodable") from None
        arr = np.asarray(arr)
        for keyword in _PIXEL_KEYWORDS:
            if keyword in ds:
                del ds[keyword]  # free the encoded bytes before the float32 copy
        if arr.ndim != 2 or arr.size == 0:
            raise MammogramReadError(f"unexpected pixel array shape {arr.shape}")
        _check_finite(arr, "in the pixel data")
        try:
            pixels, scale = display_pixels(ds, arr, clip)
        except MammogramReadError:
            raise
        except Exception as err:
            raise MammogramReadError(f"cannot apply LUTs: {_one_line(err)}") from None
        del arr
        _check_finite(pixels, "after the modality and VOI LUTs")
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
            display_scale=scale,
        )
    except MammogramReadError:
        raise
    except Exception as err:  # anything else a broken file can raise
        raise MammogramReadError(f"unreadable image: {_one_line(err)}") from None
