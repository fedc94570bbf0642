"""Which transfer syntaxes this installation can decode, predicted from the header alone.

pydicom 3 keeps a decoder per transfer syntax (``pydicom.pixels.get_decoder``) whose plugins
(gdcm, pylibjpeg, pillow, pyjpegls, ...) may or may not be installed; some plugins also refuse
some bit depths (12-bit JPEG Extended is decoded only by pylibjpeg-libjpeg). Asking the
registry with the file's transfer syntax and BitsStored tells, without decoding, whether a
file will decode here; the reason names the syntax (UID and name), why it fails, and the fix.

When decoding fails, pydicom's decoder stack and the plugins log each plugin's exception with
a full traceback (``LOGGER.exception``) before the error the reader turns into a one-line
reason; :func:`route_plugin_failures` moves those records to debug (seen with ``-v`` only).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

# Loggers that report a plugin's decode failure with a traceback (pydicom 3, pylibjpeg plugins).
PLUGIN_LOGGERS = ("pydicom.pixels.decoders.base", "pylibjpeg", "openjpeg", "libjpeg", "rle", "jpeg_ls")

# Compressed transfer syntaxes -> the permissive-licence package that decodes it.
DECODER_PACKAGES: dict[str, str] = {
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg (MIT)",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg (MIT)",  # JPEG 2000
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg (MIT)",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg (MIT)",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg (MIT)",  # HTJ2K
    "1.2.840.10008.1.2.4.57": "python-gdcm (BSD)",  # JPEG lossless process 14
    "1.2.840.10008.1.2.4.70": "python-gdcm (BSD)",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.50": "python-gdcm (BSD) or pillow",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "python-gdcm (BSD)",  # JPEG extended
    "1.2.840.10008.1.2.4.80": "pyjpegls (MIT)",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "pyjpegls (MIT)",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.5": "numpy (pydicom's own RLE decoder)",
}

# Syntaxes pydicom does not know or cannot decode, with what they are.
UNSUPPORTED_SYNTAXES: dict[str, tuple[str, str]] = {
    "1.2.840.10008.1.2.8.1": (
        "Deflated Image Frame Compression",
        "each frame is zlib-deflated; added to DICOM in 2023 and pydicom has no decoder for it",
    ),
    "1.2.840.113619.5.2": (
        "GE private Implicit VR Big Endian",
        "a private GE syntax (implicit VR, big-endian pixel data) that no public decoder reads",
    ),
}

JPEG_EXTENDED = "1.2.840.10008.1.2.4.51"


def _name(uid) -> str:
    name = UNSUPPORTED_SYNTAXES.get(str(uid), (None,))[0] or uid.name
    return name if name and name != str(uid) else "unknown transfer syntax"


def transfer_syntax_problem(transfer_syntax: str | None, bits_stored: int | None = None) -> str | None:
    """None when this installation decodes pixel data in this syntax, else a one-line reason."""
    if not transfer_syntax:
        return None
    from pydicom.uid import UID

    uid = UID(str(transfer_syntax).strip())
    label = f"{_name(uid)} ({uid})"
    if str(uid) in UNSUPPORTED_SYNTAXES:
        return f"cannot decode {label}: {UNSUPPORTED_SYNTAXES[str(uid)][1]}"
    if not uid.is_transfer_syntax:
        kind = "a private" if not str(uid).startswith("1.2.840.10008.") else "an unknown"
        return f"cannot decode {label}: {kind} transfer syntax; its pixel encoding is not one pydicom knows"
    if uid.is_deflated or not uid.is_compressed:
        return None  # pydicom inflates/reads these itself
    if str(uid).startswith("1.2.840.10008.1.2.4.10") or "MPEG" in uid.name or "HEVC" in uid.name:
        return f"cannot decode {label}: a video stream, not a still mammogram"
    if "JPIP" in uid.name:
        return f"cannot decode {label}: the pixel data is a network reference, not stored in the file"
    try:
        from pydicom.pixels import get_decoder

        decoder = get_decoder(uid)
    except NotImplementedError:
        return f"cannot decode {label}: pydicom has no decoder for it"
    except Exception as err:  # a registry error must not stop a scan
        return f"cannot decode {label}: {type(err).__name__}"
    plugins = set(decoder.available_plugins) if decoder.is_available else set()
    if str(uid) == JPEG_EXTENDED and bits_stored is not None and bits_stored > 8:
        plugins -= {"gdcm", "pillow"}  # both refuse 12-bit JPEG Extended
        if not plugins:
            return (
                f"cannot decode 12-bit {label}: only pylibjpeg-libjpeg (GPLv3, not installed) decodes it; "
                "pip install pylibjpeg pylibjpeg-libjpeg if its licence suits you"
            )
    if plugins:
        return None
    package = DECODER_PACKAGES.get(str(uid), "a pydicom decoder plugin").split(" (")[0]
    return f"cannot decode {label}: no decoder installed; install {package} (pip install {package.split(' or ')[0]})"


class _PluginFailureToDebug(logging.Filter):
    """A plugin's failure is the reader's one-line reason; its traceback is a debug record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.exc_info:
            return True
        if not logging.getLogger(__name__).isEnabledFor(logging.DEBUG):
            return False
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


@functools.lru_cache(maxsize=1)
def route_plugin_failures() -> None:
    """Install the filter above on the plugin loggers (once per process; decode workers too)."""
    for name in PLUGIN_LOGGERS:
        logging.getLogger(name).addFilter(_PluginFailureToDebug())


_JPEG2000 = {
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}
_J2K_STARTS = (b"\xff\x4f\xff\x51", b"\x00\x00\x00\x0cjP  ")  # codestream SOC + SIZ, or a JP2 signature box


def check_jpeg2000_start(ds: Any, ts: str | None) -> None:
    """A JPEG 2000 frame must start as a codestream or a JP2 file does. Some OpenJPEG releases
    (2.3) "decode" a frame without its start-of-codestream marker into an image of noise, with
    only a line on stderr; refused here with the reason, whatever the installed decoder."""
    if ts not in _JPEG2000 or "PixelData" not in ds:
        return
    from pydicom.encaps import generate_frames

    try:
        first = next(generate_frames(ds.PixelData, number_of_frames=max(int(getattr(ds, "NumberOfFrames", 1) or 1), 1)))
    except (StopIteration, ValueError, TypeError):
        return  # the decoder says what is wrong with the encapsulation
    if not bytes(first[:8]).startswith(_J2K_STARTS):
        from arfl_studio.data.datasets.reasons import MammogramReadError

        raise MammogramReadError(
            "cannot decode pixel data: the JPEG 2000 frame does not start with a codestream (no SOC marker): the file is damaged",
            "undecodable",
        )
