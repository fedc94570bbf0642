"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash mid-write leaves the previous file (or none), never half a file. The
temporary name carries the writer's process id (``.NAME.p<PID>.<random>.tmp``), so
what a killed process left behind is recognised and removed later
(``remove_stale_temp_files``) without touching a live writer's file.

After the rename the folder itself is fsynced, so a power cut cannot lose a file that was
reported written. Checkpoints (:func:`save_torch`) get a checksum file beside them
(``NAME.pt.sha256``) that :func:`verify_checksum` checks on load; ``keep_previous`` keeps the
checkpoint it replaces as ``NAME.previous.pt`` (with its checksum) to fall back on.

A symlink is written through to its target (never replaced by a regular file) and an existing
file keeps its permission bits. A write that fails is a :class:`WriteError` ("cannot write PATH:
reason"); a full disk raises :class:`NoSpaceError` ("no space left on DEVICE (needs about N MB)")
instead of torch's ``unexpected pos`` RuntimeError, and JSON is always valid JSON:
NaN and infinities are written as ``null``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import time
import tempfile
from pathlib import Path
from typing import Any, Callable

from arfl_studio.file_names import escape_name


class WriteError(OSError):
    """A file could not be written: the message is "cannot write PATH: reason" (or, for a full
    disk, :class:`NoSpaceError`'s). Nothing was left half-written."""

    def __str__(self) -> str:
        return str(self.strerror)


class NoSpaceError(WriteError):
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


def fsync_folder(folder: str | os.PathLike) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows, or a folder we may not open: the rename itself stands
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not fsync folders
    finally:
        os.close(fd)


def write_target(path: str | os.PathLike) -> Path:
    """Where a write to ``path`` lands: a symlink's final target (a link is written through, never
    replaced by a regular file); ``path`` itself otherwise."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError) or exc.errno == errno.EISDIR:
        return "it is a folder"
    if exc.errno == errno.ENOTDIR:
        return "a part of its folder path is a file, not a folder"
    return exc.strerror or str(exc)


def _write_atomically(
    path: Path,
    write: Callable[[Any], None],
    mode: str,
    size: Callable[[], int] | None = None,
    replace: Callable[[Path, Path], None] | None = None,
) -> Path:
    """``replace(tmp, path)`` (default ``os.replace``) puts the written, fsynced temporary file in place.

    A symlink is written through (its target gets the new content); an existing file keeps its
    permission bits. Any failure is a :class:`WriteError` naming ``path``.
    """
    named = Path(path)
    path = write_target(named)
    if path.is_dir():
        raise WriteError(errno.EISDIR, f"cannot write {named}: it is a folder")
    try:
        keep_mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.p{os.getpid()}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {named}: {_reason(exc)}") from exc
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_mode is not None:
            os.chmod(tmp, keep_mode)  # the user's permission bits survive the replace
        (replace or os.replace)(Path(tmp), path)
        fsync_folder(path.parent)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, WriteError):
            raise
        cause = _no_space_cause(exc)
        if cause is not None:
            needed = None
            try:
                needed = size() if size is not None else None
            except Exception:  # noqa: BLE001 - the estimate is only for the message
                pass
            raise NoSpaceError(cause.errno, no_space_message(path, needed)) from exc
        if isinstance(exc, OSError):
            raise WriteError(exc.errno, f"cannot write {named}: {_reason(exc)}") from exc
        raise
    return named


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


def save_torch(path: str | os.PathLike, obj: Any, keep_previous: bool = False) -> Path:
    """``torch.save`` atomically, with a checksum file beside it (:func:`checksum_path`).

    ``keep_previous``: the file it replaces becomes :func:`previous_path` (with its checksum), a
    checkpoint to fall back on when this one is found damaged. Each step leaves a consistent pair
    or a file without a checksum (unverified), never a file with another file's checksum.
    """
    import torch

    def replace(tmp: Path, target: Path) -> None:
        digest = file_sha256(tmp)
        stamp = checksum_path(target)
        if keep_previous and target.exists():
            previous = previous_path(target)
            checksum_path(previous).unlink(missing_ok=True)  # first: never a file with another's checksum
            os.replace(target, previous)
            if stamp.exists():
                os.replace(stamp, checksum_path(previous))
        stamp.unlink(missing_ok=True)
        os.replace(tmp, target)
        write_text(stamp, f"{digest}  {target.name}\n")

    return _write_atomically(Path(path), lambda h: torch.save(obj, h), "wb", lambda: _tensor_bytes(obj), replace)


class DamagedFileError(ValueError):
    """A file's bytes no longer match the checksum recorded when it was written."""


def checksum_path(path: str | os.PathLike) -> Path:
    """Where the SHA-256 of ``path`` is kept: ``NAME.pt.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def previous_path(path: str | os.PathLike) -> Path:
    """The checkpoint ``save_torch(keep_previous=True)`` replaced: ``NAME.previous.pt``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: str | os.PathLike) -> bool:
    """Check ``path`` against its recorded checksum: True when it matches, False when none was
    recorded (a file from before checksums); :class:`DamagedFileError` when it does not match."""
    path, stamp = Path(path), checksum_path(path)
    try:
        recorded = stamp.read_text(encoding="utf-8").split()[0].lower()
    except FileNotFoundError:
        return False
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        raise DamagedFileError(f"{stamp} (the checksum of {path.name}) cannot be read: {exc}") from None
    actual = file_sha256(path)
    if actual != recorded:
        raise DamagedFileError(
            f"{path} is damaged: its content no longer matches the checksum recorded when it "
            f"was written ({stamp}: sha256 {recorded[:12]}..., now {actual[:12]}...)"
        )
    return True


def remove_checkpoint(path: str | os.PathLike) -> None:
    """Remove a checkpoint written by :func:`save_torch`, its previous one and their checksums."""
    path = Path(path)
    for item in (path, checksum_path(path), previous_path(path), checksum_path(previous_path(path))):
        item.unlink(missing_ok=True)


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
    """``value`` with every non-finite float (Python or numpy) replaced by None, and every string
    holding a file name's undecodable bytes escaped (:func:`arfl_studio.file_names.escape_name`):
    the JSON is valid UTF-8 and shows them as ``\\xNN``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, os.PathLike)):
        return escape_name(os.fspath(value))
    if isinstance(value, dict):
        return {escape_name(k) if isinstance(k, str) else k: finite_json(v) for k, v in value.items()}
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
