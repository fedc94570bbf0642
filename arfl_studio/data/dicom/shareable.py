"""De-identified path form for anything meant to be shared (splits, scan and attack JSON).

CMMD stores each study in a folder named after its date (``07-18-2010-NA-NA-7937``) and each
series in one ending in part of its UID (``1.000000-NA-70244``); other archives name files by
their SOP Instance UID. ``shareable_path`` replaces every such component with a short keyed hash
(``x3f9c2a1b7d``), stable for one key, and keeps the rest: the dataset and patient folders
(patient IDs are pseudonymous), plain file names such as ``1-1.dcm`` and the file extension.

The hash is an HMAC with a secret key, not a plain hash: a date and a four-digit suffix are too
few possibilities for a plain hash to hide them. The default key is created once per user in the
ARFL Studio data folder (``deid-path.key``); the same key gives the same names, so give the key
file only to people allowed to see the original folder names.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path, PurePosixPath

from arfl_studio.file_names import name_bytes

KEY_FILE = "deid-path.key"

_DATE = re.compile(r"(?<!\d)(\d{1,2}[-_./]\d{1,2}[-_./](19|20)\d{2}|(19|20)\d{2}[-_./]?\d{2}[-_./]?\d{2})(?!\d)")
_UID = re.compile(r"\d+(\.\d+){3,}")  # 1.2.840.113619.2.55... (and its file-name form)
_LONG_NUMBER = re.compile(r"\d{5,}")  # UID tails, accession numbers, times


def identifying(component: str) -> bool:
    """True for a path component that may carry a date, a UID or another long number."""
    return bool(_DATE.search(component) or _UID.search(component) or _LONG_NUMBER.search(component))


def default_key() -> bytes:
    """The per-user key, created on first use (random, 32 bytes, readable by the user only)."""
    from arfl_studio.atomic import write_bytes
    from arfl_studio.data.paths import default_data_dir

    path = default_data_dir() / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 16:
            return key
    except OSError:
        pass
    write_bytes(path, secrets.token_bytes(32))
    try:
        os.chmod(path, 0o600)
    except OSError:
        pass
    return path.read_bytes()


def _hashed(component: str, key: bytes) -> str:
    stem, dot, suffix = component.rpartition(".") if _is_extension(component) else (component, "", "")
    digest = hmac.new(key, name_bytes(stem), hashlib.sha256).hexdigest()[:10]  # a name need not be UTF-8
    return f"x{digest}{dot}{suffix}"


def _is_extension(component: str) -> bool:
    stem, dot, suffix = component.rpartition(".")
    return bool(dot and stem and suffix.isalpha() and len(suffix) <= 5)


def shareable_path(rel_path: str | os.PathLike, *, key: bytes | None = None, keep: frozenset[str] | set[str] = frozenset()) -> str:
    """``rel_path`` ('/'-separated, relative to the dataset) with identifying components hashed.

    ``keep``: components never hashed (e.g. the dataset's patient IDs, which are pseudonymous
    but may contain long numbers).
    """
    key = default_key() if key is None else key
    parts = PurePosixPath(Path(rel_path).as_posix()).parts
    out = [p if (p in keep or not identifying(p)) else _hashed(p, key) for p in parts]
    return "/".join(out)
