"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash mid-write leaves the previous file (or none), never half a file. The
temporary name carries the writer's process id (``.NAME.p<PID>.<random>.tmp``), so
what a killed process left behind is recognised and removed later
(``remove_stale_temp_files``) without touching a live writer's file.
"""

from __future__ import annotations

import json
import os
import re
import time
import tempfile
from pathlib import Path
from typing import Any, Callable


def _write_atomically(path: Path, write: Callable[[Any], None], mode: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.p{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


_TEMP_NAME = re.compile(r"^\..+\.p(?P<pid>\d+)\.[A-Za-z0-9_]{8}\.tmp$")


def process_alive(pid: int) -> bool:
    """True when a process with this id runs on this machine (or we cannot tell)."""
    try:
        import psutil
    except ImportError:  # POSIX fallback; signal 0 checks without signalling
        if os.name != "posix":
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return psutil.pid_exists(pid)


def remove_stale_temp_files(folder: str | os.PathLike, recursive: bool = False, min_age_s: float = 60.0) -> list[Path]:
    """Delete temporary files of this module left by processes that no longer run.

    Only names this module makes (``.NAME.p<PID>.<random>.tmp``) are touched, and only
    when that process is gone and the file is ``min_age_s`` old (a writer on another
    machine sharing the folder has finished long before). Returns what was removed.
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    candidates = folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")
    now = time.time()
    for path in candidates:
        match = _TEMP_NAME.match(path.name)
        if not match or int(match["pid"]) == os.getpid() or process_alive(int(match["pid"])):
            continue
        try:
            if not path.is_file() or path.is_symlink() or now - path.stat().st_mtime < min_age_s:
                continue
            path.unlink()
        except OSError:
            continue  # gone already, or not ours to remove
        removed.append(path)
    return removed


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
