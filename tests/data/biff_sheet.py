"""A one-sheet legacy Excel file (.xls, BIFF8) written from rows, for tests of readers that take
the real INbreast.xls. xlwt is not a dependency; xlrd reads a raw BIFF8 workbook stream (no OLE2
container) as it reads a saved .xls. Cells: str -> LABEL, int/float -> NUMBER, None -> empty."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Sequence


def _record(kind: int, data: bytes) -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _bof(substream: int) -> bytes:  # BIFF8, workbook globals (0x05) or worksheet (0x10)
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, substream, 0x0DBB, 0x07CC, 0, 0x06))


def _cell(row: int, col: int, value: object) -> bytes:
    if isinstance(value, str):
        text = value.encode("latin-1")
        return _record(0x0204, struct.pack("<HHHHB", row, col, 0, len(text), 0) + text)
    return _record(0x0203, struct.pack("<HHHd", row, col, 0, float(value)))  # type: ignore[arg-type]


def write_xls(path: Path, rows: Sequence[Sequence[object]], sheet: str = "Sheet1") -> Path:
    """Write ``rows`` (the first is the header) as ``sheet`` of a BIFF8 workbook at ``path``."""
    width = max(len(r) for r in rows)
    cells = b"".join(_cell(r, c, v) for r, row in enumerate(rows) for c, v in enumerate(row) if v is not None)
    worksheet = _bof(0x10) + _record(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0)) + cells + _record(0x000A, b"")
    xf = _record(0x00E0, struct.pack("<HHHBBBBIIH", 0, 0, 0x0001, 0x20, 0, 0, 0, 0, 0, 0x20C0))  # one General cell format
    head = _bof(0x05) + _record(0x0042, struct.pack("<H", 1252)) + xf
    name = sheet.encode("latin-1")

    def boundsheet(offset: int) -> bytes:
        return _record(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 0) + name)

    offset = len(head) + len(boundsheet(0)) + len(_record(0x000A, b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(head + boundsheet(offset) + _record(0x000A, b"") + worksheet)
    return path
