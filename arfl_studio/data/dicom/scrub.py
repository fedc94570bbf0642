"""What the app writes for sharing carries no PHI: one rule set, the data layer's.

``scrub`` is applied to every JSON document the GUI writes beside a run (attack reports):
attributes that the PS3.15 basic profile hides (``arfl_studio.data.dicom.deid.is_phi``) are dropped
wherever a DICOM keyword appears as a key, and file paths lose their date/UID folder names
(``arfl_studio.data.dicom.shareable.shareable_path``: CMMD names study folders after the study date).
Pseudonymous patient IDs stay, as everywhere else.
"""

from __future__ import annotations

from typing import Any

PATH_KEYS = frozenset({"id", "path", "rel_path", "file"})


def _is_dicom_keyword(key: str) -> bool:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(key) is not None


def scrub(doc: Any, *, key: bytes | None = None) -> Any:
    """A copy of ``doc`` (dicts, lists, scalars) without PHI attributes and with shareable paths."""
    from arfl_studio.data.dicom.deid import is_phi
    from arfl_studio.data.dicom.shareable import default_key, shareable_path

    if key is None:
        key = default_key()

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if isinstance(k, str) and _is_dicom_keyword(k) and is_phi(k):
                    continue
                if isinstance(k, str) and k in PATH_KEYS and isinstance(v, str) and "/" in v:
                    out[k] = shareable_path(v, key=key)
                else:
                    out[k] = walk(v)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return walk(doc)
