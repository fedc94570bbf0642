"""Where a patient's images hang in the viewer: the four-view hanging (RCC LCC / RMLO LMLO) and
every other image beside it (Qt-free).

Each image is named by laterality and exact view (``LXCCL``, ``RML``, ...). A spot compression or
magnification view (View Modifier Code Sequence, CID 4015, by code value) is a view of its own
(``LCC SPOT``), never a CC of the hanging; a second image of one name gets a number (``LCC 2``).
The first plain image of each hanging name hangs; the rest are listed beside it.
"""

from __future__ import annotations

from typing import Any

HANGING = ("RCC", "LCC", "RMLO", "LMLO")

# CID 4015 View Modifier for Mammography: SNOMED CT and the legacy SNOMED-RT codes
MODIFIERS = {"399055006": "SPOT", "R-102D7": "SPOT", "399163009": "MAG", "R-102D6": "MAG"}


def _modifier_items(ds: Any) -> list:
    items = list(ds.get("ViewModifierCodeSequence") or ())  # some writers put it at the top level
    for view in ds.get("ViewCodeSequence") or ():
        items += list(view.get("ViewModifierCodeSequence") or ())
    return items


def view_modifiers(path) -> tuple[str, ...]:
    """ "SPOT" and/or "MAG" when the image's header codes a spot compression or magnification view."""
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        codes = [str(item.get("CodeValue", "") or "").strip() for item in _modifier_items(ds)]
    except Exception:  # an unreadable header: the image read says why, here it is simply plain
        return ()
    return tuple(dict.fromkeys(MODIFIERS[c] for c in codes if c in MODIFIERS))


def view_names(records, patient_id: str) -> dict[str, Any]:
    """{name: record} of the patient's images with laterality and view, in the records' order."""
    out: dict[str, Any] = {}
    for record in records:
        if record.patient_id != patient_id or not record.laterality or not record.view:
            continue
        name = " ".join((f"{record.laterality}{record.view}", *view_modifiers(record.path)))
        number, unique = 1, name
        while unique in out:
            number += 1
            unique = f"{name} {number}"
        out[unique] = record
    return out


def hanging_order(names) -> list[str]:
    """The hanging's views first (in hanging order), then the others by name."""
    names = list(names)
    return [n for n in HANGING if n in names] + sorted(n for n in names if n not in HANGING)


def name_of(views: dict, record) -> str:
    """The name ``record``'s image has among ``views`` (``four_views``' result), found by its file;
    laterality and view when it is not there."""
    path = str(getattr(record, "path", ""))
    for name, view in views.items():
        if str(getattr(view.get("record"), "path", "")) == path:
            return name
    return f"{record.laterality}{record.view}"
