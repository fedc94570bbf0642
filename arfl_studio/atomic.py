"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash mid-write leaves the previous file (or none), never half a file. The
temporary name carries the writer's process id (``.NAME.p<PID>.<random>.tmp``), so
what a killed process left behind is recognised and removed later
(``remove_stale_temp_files``) without touching a live writer's file.

A full disk raises :class:`NoSpaceError` ("no space left on DEVICE (needs about N MB)")
instead of torch's ``unexpected pos`` RuntimeError, and JSON is always valid JSON:
NaN and infinities are written as ``null``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import time
import tempfile
from pathlib import Path
from typing import Any, Callable


class NoSpaceError(OSError):
    """The disk (or quota) is full: the message names the device, the file and the space needed."""

    def __str__(self) -> str:
        return str(self.strerror)


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _no_space_cause(exc: BaseException) -> OSError | None:
    """The ENOSPC/EDQUOT behind ``exc`` (torch reports a failed write as 'unexpected pos')."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _device_of(path: Path) -> str:
    """The mount point holding ``path`` (and its device, where /proc/mounts says)."""
    mount = path.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) > 1 and parts[1] == str(mount):
                return f"{mount} ({parts[0]})"
    except OSError:
        pass
    return str(mount)


def no_space_message(path: Path, needed_bytes: int | None) -> str:
    path = Path(path)
    try:
        free = shutil.disk_usage(path.parent).free
        free_text = f", {free / 1e6:.0f} MB free"
    except OSError:
        free_text = ""
    needs = f"needs about {max(1, math.ceil(needed_bytes / 1e6))} MB" if needed_bytes else "needs more"
    return f"no space left on {_device_of(path.parent)} ({needs}{free_text}) writing {path}; free some space and re-run"


def _write_atomically(path: Path, write: Callable[[Any], None], mode: str, size: Callable[[], int] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.p{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = _no_space_cause(exc)
        if cause is not None:
            needed = None
            try:
                needed = size() if size is not None else None
            except Exception:  # noqa: BLE001 - the estimate is only for the message
                pass
            raise NoSpaceError(cause.errno, no_space_message(path, needed)) from exc
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
    return _write_atomically(Path(path), lambda h: h.write(text), "w", lambda: len(text.encode("utf-8")))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return _write_atomically(Path(path), lambda h: h.write(data), "wb", lambda: len(data))


def json_text(obj: Any, indent: int | None = 2) -> str:
    """Valid JSON (RFC 8259): NaN and infinities become null, numpy values plain numbers."""
    return json.dumps(finite_json(obj), indent=indent, allow_nan=False, default=_json_default)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json_text(obj) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> Path:
    """Append one line by rewriting the file atomically (metrics files are small)."""
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    return write_text(path, old + json_text(record, indent=None) + "\n")


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return _write_atomically(Path(path), lambda h: torch.save(obj, h), "wb", lambda: _tensor_bytes(obj))


def _tensor_bytes(obj: Any) -> int:
    """About how many bytes ``torch.save(obj)`` writes (its tensors' storage)."""
    if hasattr(obj, "element_size") and hasattr(obj, "nelement"):
        return obj.element_size() * obj.nelement()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 64


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float (Python or numpy) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalars/arrays, tensors
        return finite_json(value.tolist())
    return value


def _json_default(value: Any) -> Any:
    # numpy scalars/arrays and paths appear in results; make them plain JSON.
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
