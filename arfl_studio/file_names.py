"""File names that are not valid UTF-8, written where text must be valid.

On Linux a file name is bytes; Python gives a name that is not valid UTF-8 (``b"bad\\xff.dcm"``) as a
``str`` with the undecodable bytes as lone surrogates (``os.fsdecode``, PEP 383), and such a str
opens the file again. It cannot be encoded as UTF-8, so JSON, hashes and terminals need a visible
form: :func:`escape_name` writes each undecodable byte as ``\\xNN`` (and, in such a name only, a
backslash as ``\\\\``, so :func:`unescape_name` gives back the exact name). A valid name is unchanged.
"""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\(\\|x[89a-f][0-9a-f])")


def has_undecodable_bytes(name: str) -> bool:
    """Whether ``name`` holds bytes that were not valid UTF-8 (lone surrogates from ``os.fsdecode``)."""
    if name.isascii():
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape_name(name: str) -> str:
    """``name`` as valid text: undecodable bytes as ``\\xNN``, backslashes doubled; a valid name unchanged."""
    if not has_undecodable_bytes(name):
        return name
    out = []
    for char in name:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape's form of the byte code - 0xDC00
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:  # another lone surrogate (not from a file name): its code point
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def unescape_name(text: str) -> str:
    """The exact name :func:`escape_name` wrote as ``text`` (apply only to text that was escaped)."""
    return _ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(0xDC00 + int(m.group(1)[1:], 16)), text)


def name_bytes(name: str) -> bytes:
    """The name's bytes as the file system has them (for hashes)."""
    return name.encode("utf-8", "surrogateescape")
