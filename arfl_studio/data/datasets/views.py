"""Mammography views from the header, matched by code, never by free text.

DICOM CID 4014 "View for Mammography" codes each view twice: the SNOMED CT concept
(scheme SCT) and the older SNOMED-RT/SNM3 value (schemes SRT, SNM3, 99SDM) that older
modalities still write. CID 4015 "View Modifier for Mammography" turns a CC into a
cleavage view (CV) and an oblique into an axillary tail view (AT). The exact view (ACR
abbreviation) is kept in the scan output; ``view_family`` folds it into the CC / MLO
projections the model and the four-view layout use.
"""

from __future__ import annotations

from typing import Any

# code value -> ACR view abbreviation (CID 4014). SCT concept ids and their legacy values.
VIEW_CODES: dict[str, str] = {
    "399260004": "ML",
    "R-10224": "ML",  # medio-lateral
    "399368009": "MLO",
    "R-10226": "MLO",  # medio-lateral oblique
    "399352003": "LM",
    "R-10228": "LM",  # latero-medial
    "399099002": "LMO",
    "R-10230": "LMO",  # latero-medial oblique
    "399162004": "CC",
    "R-10242": "CC",  # cranio-caudal
    "399196006": "FB",
    "R-10244": "FB",  # caudo-cranial (from below)
    "399188001": "SIO",
    "R-102D0": "SIO",  # superolateral to inferomedial oblique
    "441555000": "ISO",
    "R-40AAA": "ISO",  # inferomedial to superolateral oblique
    "399192008": "XCCL",
    "R-1024A": "XCCL",  # cranio-caudal exaggerated laterally
    "399101009": "XCCM",
    "R-1024B": "XCCM",  # cranio-caudal exaggerated medially
    "R-102CF": "XCC",  # exaggerated cranio-caudal (retired SNM3 code, still in old files)
    "127457009": "SPECIMEN",
    "G-8310": "SPECIMEN",  # tissue specimen from breast
}

# CID 4015 modifiers that name a view of their own.
_MODIFIER_VIEWS: dict[str, str] = {
    "399161006": "CV",
    "R-102D2": "CV",  # cleavage
    "399011000": "AT",
    "R-102D1": "AT",  # axillary tail
}

_CODING_SCHEMES = {"SCT", "SRT", "SNM3", "99SDM"}

# Every ACR view abbreviation a mammography ViewPosition (0018,5101) may hold.
MAMMOGRAPHY_VIEWS = frozenset(set(VIEW_CODES.values()) | set(_MODIFIER_VIEWS.values()))

# Cranio-caudal projections and oblique projections; true laterals (ML, LM) and specimens
# belong to neither and get family None.
_FAMILY = {
    "CC": "CC",
    "XCC": "CC",
    "XCCL": "CC",
    "XCCM": "CC",
    "FB": "CC",
    "CV": "CC",
    "MLO": "MLO",
    "LMO": "MLO",
    "SIO": "MLO",
    "ISO": "MLO",
    "AT": "MLO",
}


def view_family(view: str | None) -> str | None:
    """ "CC", "MLO" or None (a lateral, a specimen, an unknown view)."""
    return _FAMILY.get((view or "").strip().upper())


def _code(item: Any, table: dict[str, str]) -> str | None:
    value = str(item.get("CodeValue", "") or "").strip()
    scheme = str(item.get("CodingSchemeDesignator", "") or "").strip().upper()
    if value in table and (not scheme or scheme in _CODING_SCHEMES):
        return table[value]
    return None


def coded_view(ds: Any) -> str | None:
    """The view from ViewCodeSequence (0054,0220) and its modifiers, by code value only."""
    try:
        for item in ds.get("ViewCodeSequence") or ():
            view = _code(item, VIEW_CODES)
            if view is None:
                continue
            modifiers = list(item.get("ViewModifierCodeSequence") or ())
            modifiers += list(ds.get("ViewModifierCodeSequence") or ())  # some writers put it at the top
            for modifier in modifiers:
                special = _code(modifier, _MODIFIER_VIEWS)
                if special == "CV" and view_family(view) == "CC":
                    return "CV"
                if special == "AT" and view_family(view) == "MLO":
                    return "AT"
            return view
    except Exception:  # a malformed sequence must not stop a scan
        return None
    return None


def view_of(ds: Any) -> str | None:
    """Exact view: the coded view first (exact by definition), else ViewPosition as written."""
    view = coded_view(ds)
    if view:
        return view
    try:
        value = str(ds.get("ViewPosition", "") or "").strip().upper()
    except Exception:
        return None
    return value or None
