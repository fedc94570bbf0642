"""One writer per run folder and fold: lock files that name their holder (standard library only).

A lock is a file holding the holder's process id, host, start time and command. It
is held by an open file description with ``flock`` (POSIX), so the kernel releases
it the moment its process dies, even after ``kill -9``: a lock file left behind by a
dead process is *stale* and the next run takes it over, with no race between two
processes taking over the same stale file (only one gets the ``flock``; the other
reads the winner's record and says who holds it). Where ``flock`` is not available
(Windows, or a file system without locks) the file is created with ``O_EXCL`` and a
stale one (same host, process no longer alive) is replaced by one process at a time,
under an ``O_EXCL`` claim file, with an atomic rename (see ``_replace_stale``).

Locks:
    OUT/.run.lock                        held only while run-level files are written
                                         (config.toml, splits.json, manifest.json, results.json)
    OUT/.locks/KEY[.seed_S].fold_K.lock  held while a fold trains; ``--fold`` jobs of one
                                         run lock different files and run in parallel
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from arfl_studio.atomic import process_alive

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_DIR = ".locks"
RUN_LOCK = ".run.lock"
# An empty or unparseable lock file this old is stale: its creator died between creating and
# writing it (a live one writes its record within milliseconds).
UNREADABLE_LOCK_STALE_S = 5.0


class LockHeld(RuntimeError):
    """Another live process holds the lock; the message names it."""

    def __init__(self, path: Path, holder: dict | None, what: str):
        self.path, self.holder = path, holder or {}
        if holder:
            who = (
                f"process {holder.get('pid')} on {holder.get('host')} (started {holder.get('started')}"
                + (f": {holder['command']}" if holder.get("command") else "")
                + ")"
            )
        else:
            who = "another process"
        super().__init__(f"{what} is in use by {who}; wait for it to finish or stop it (lock file {path})")


def holder_record() -> dict:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv)[:300],
        "token": uuid.uuid4().hex,
    }


def pid_alive(pid: int) -> bool:
    # psutil, not os.kill(pid, 0): on Windows, where the O_EXCL fallback is used, signal 0 is
    # CTRL_C_EVENT and would interrupt the holder instead of asking whether it runs.
    return pid > 0 and process_alive(pid)


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class FileLock:
    """A held lock; ``release()`` (or the context manager) removes it. ``taken_over``: the stale record."""

    path: Path
    fd: int | None
    record: dict
    taken_over: dict | None = None

    def release(self) -> None:
        if self.fd is None and not self.path.exists():
            return
        current = _read(self.path)
        # Remove the file only while it is ours (still holding the flock, or our token in it).
        if (current is None and self.fd is not None) or (current or {}).get("token") == self.record["token"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "FileLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def acquire(path: str | os.PathLike, *, wait: float = 0.0) -> FileLock:
    """Take the lock at ``path`` or raise :class:`LockHeld` naming the holder.

    ``wait``: seconds to keep trying while another process holds it (short run-level
    sections); 0 fails at once (folds).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            if fcntl is not None:
                try:
                    return _acquire_flock(path)
                except OSError as exc:
                    if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                        raise
            return _acquire_exclusive(path)
        except LockHeld:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _acquire_flock(path: Path) -> FileLock:
    for _ in range(100):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:  # another job removed the empty lock folder just now
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(path, _holder_of_live(path), what_of(path)) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file between our open and our flock
            os.close(fd)
            continue
        previous = _read(path)
        record = holder_record()
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        return FileLock(path, fd, record, taken_over=previous)
    raise LockHeld(path, None, what_of(path))  # pragma: no cover - lock churning for 100 tries


def _holder_of_live(path: Path) -> dict | None:
    """The live holder's record. A holder that has just taken the lock over may not have
    written its own record yet (the file is empty or still names the dead process): wait a moment
    (seconds, not a count of tries: on a loaded machine that holder may not run for a while)."""
    deadline = time.monotonic() + 3.0
    while True:
        holder = _read(path)
        if holder and not _stale(holder):
            return holder
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _read_written(path: Path) -> bytes | None:
    """The bytes of a lock file another process may have created a moment ago and not yet written."""
    deadline = time.monotonic() + 3.0
    while True:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:  # removed just now
            return None
        except OSError:
            raw = None
        if _parse(raw) is not None:
            return raw
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def _parse(raw: bytes | None) -> dict | None:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stale(holder: dict | None) -> bool:
    """A record of a process on this host that is no longer alive (unreadable or foreign: never stale)."""
    return bool(holder) and holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", -1)))


def _create(path: Path, data: bytes) -> bool:
    """Create ``path`` holding ``data`` unless it exists (O_EXCL)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _replace_stale(path: Path, stale: bytes, data: bytes, depth: int = 0) -> bool:
    """Atomically replace the stale file at ``path`` (content ``stale``) with ``data``; False when
    ``path`` no longer holds ``stale`` or another live process is replacing it.

    Why this is race-free: a file holding a dead process's record is only ever replaced by the
    process holding its claim, ``path.takeover-HASH(stale)``, created with O_EXCL, so one at a time.
    The claimant re-reads ``path`` after claiming: if it still holds ``stale``, nobody else can
    change it before our ``os.replace`` (its owner is dead, no one can create over it, no one else
    holds the claim), so that rename swaps exactly the stale file for ours, with no moment without
    a lock file; if it holds anything else (a racer took it over first) we touch nothing. A live
    lock is never removed, moved or overwritten by anyone but its owner. A claim left by a
    claimant that died is itself stale and is taken over the same way (one level deep).
    """
    claim = path.with_name(f"{path.name}.takeover-{hashlib.sha256(stale).hexdigest()[:16]}")
    mine = json.dumps(holder_record()).encode()
    try:
        claimed = _create(claim, mine)
    except FileNotFoundError:  # the lock folder went with its last lock: the stale file is gone
        return False
    if not claimed:
        held = _read_written(claim)
        if depth >= 1 or not _stale(_parse(held)) or not _replace_stale(claim, held, mine, depth + 1):
            return False  # a live process is taking it over (or a dead claimant's claim was just taken)
    try:
        try:
            current = path.read_bytes()
        except OSError:
            current = None
        if current != stale:
            return False
        temp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        _create(temp, data)
        try:
            os.replace(temp, path)
        except OSError:  # Windows: a reader has it open just now; the caller looks again
            temp.unlink(missing_ok=True)
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            if claim.read_bytes() == mine:  # ours (a live claim is removed only by its claimant)
                claim.unlink()


def _acquire_exclusive(path: Path) -> FileLock:
    """O_EXCL fallback: create, or take over a stale file of a dead process on this host."""
    deadline = time.monotonic() + 10.0  # a take-over in progress takes a few file operations
    while time.monotonic() < deadline:
        record = holder_record()
        data = json.dumps(record).encode()
        try:
            if _create(path, data):
                return FileLock(path, None, record)
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            continue
        raw = _read_written(path)
        if raw is None and not path.exists():  # released just now: try again
            continue
        if raw is None:  # empty or garbled for seconds: stale once old enough
            garbled = _old_unreadable(path)
            if garbled is not None and _replace_stale(path, garbled, data):
                return FileLock(path, None, record, taken_over={"unreadable": garbled[:200].decode("utf-8", "replace")})
            if garbled is None:
                raise LockHeld(path, None, what_of(path))
            time.sleep(0.01)
            continue
        holder = _parse(raw)
        if not _stale(holder):
            raise LockHeld(path, holder, what_of(path))
        if _replace_stale(path, raw, data):
            return FileLock(path, None, record, taken_over=holder)
        time.sleep(0.01)  # taken over by another process just now, or being taken over: look again
    holder = _read(path)  # pragma: no cover - a claimant stuck (stopped?) mid-take-over for 10 s
    raise LockHeld(path, None if _stale(holder) else holder, what_of(path))  # pragma: no cover


def _old_unreadable(path: Path) -> bytes | None:
    """The bytes of an empty or unparseable lock file at least :data:`UNREADABLE_LOCK_STALE_S` old, else None."""
    try:
        raw = path.read_bytes()
        age = time.time() - path.stat().st_mtime
    except OSError:
        return None
    return raw if _parse(raw) is None and age >= UNREADABLE_LOCK_STALE_S else None


def what_of(path: Path) -> str:
    if path.name == RUN_LOCK:
        return f"run folder {path.parent}"
    stem = path.name.removesuffix(".lock")
    if stem.endswith(".final"):
        return f"the final model of {stem.removesuffix('.final').replace('.seed_', ' seed ')} in {path.parent.parent}"
    key, _, fold = stem.rpartition(".fold_")
    key = key.replace(".seed_", " seed ")
    return f"fold {fold} of {key} in {path.parent.parent}"


def fold_lock_path(out: str | os.PathLike, method_key: str, fold: int | None, seed: int | None = None) -> Path:
    """The lock of one fold (``fold`` None: the method's final model)."""
    name = method_key + ("" if seed is None else f".seed_{seed}") + (".final" if fold is None else f".fold_{fold}") + ".lock"
    return Path(out) / LOCK_DIR / name


def run_lock_path(out: str | os.PathLike) -> Path:
    return Path(out) / RUN_LOCK


class FoldLocks:
    """Every fold lock a job needs, taken up front (a second job fails before writing anything)."""

    def __init__(self) -> None:
        self.locks: list[FileLock] = []

    def take(self, out: Path, items) -> list[dict]:
        """Lock each (key, fold, seed); returns the stale records taken over. All or none."""
        try:
            for key, fold, seed in items:
                self.locks.append(acquire(fold_lock_path(out, key, fold, seed)))
        except BaseException:
            self.release()
            raise
        return [lock.taken_over for lock in self.locks if lock.taken_over]

    def release(self) -> None:
        folders = {lock.path.parent for lock in self.locks}
        while self.locks:
            self.locks.pop().release()
        for folder in folders:  # OUT/.locks goes when its last lock does (another job may still hold one)
            with contextlib.suppress(OSError):
                folder.rmdir()
