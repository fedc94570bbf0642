"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash mid-write leaves the previous file (or none), never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _write_atomically(path: Path, write: Callable[[Any], None], mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _write_atomically(Path(path), lambda h: h.write(text), "w")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _write_atomically(Path(path), lambda h: h.write(data), "wb")


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> Path:
    """Append one line by rewriting the file atomically (metrics files are small)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    return write_text(path, old + json.dumps(record, default=_json_default) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return _write_atomically(Path(path), lambda h: torch.save(obj, h), "wb")


def _json_default(value: Any) -> Any:
    # numpy scalars/arrays and paths appear in results; make them plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
