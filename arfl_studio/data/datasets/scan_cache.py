"""The scan's header cache: an interrupted scan resumes, and a re-scan reads only what changed.

Reading 54,000 headers (RSNA) takes minutes even in parallel; Ctrl-C or Stop part-way must
not throw them away. Every header read (or refusal, with its reason) is kept per file,
keyed by the file's path relative to the dataset root, its size and its modification time
(ns): a file that changed is read again. One cache file per dataset root and header-read
options (what is refused depends on them) lives under the user's data folder
(``default_data_dir()/scan-cache``; ``ARFL_STUDIO_SCAN_CACHE`` overrides the folder),
written atomically every few seconds and when the scan ends, however it ends. A lock beside
it keeps two processes from writing one cache: the second scan reads the cache but does not
write it, and says so in its notes. Only header fields are kept (no pixels, no PHI beyond
the PatientID the scan already reports).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Sequence

from arfl_studio import __version__, atomic
from arfl_studio.data.datasets.file_jobs import HEADER_CRASH_REASON, HeaderResult
from arfl_studio.data.dicom.reader import HeaderInfo
from arfl_studio.data.paths import default_data_dir
from arfl_studio.run_lock import FileLock, LockHeld, acquire

CACHE_FORMAT = 1
SAVE_EVERY_S = 5.0  # an interrupted scan loses at most this much reading (plus what was in flight)
_HEADER_FIELDS = {f.name for f in fields(HeaderInfo)}


def scan_cache_dir() -> Path:
    """Where scan caches live (``ARFL_STUDIO_SCAN_CACHE``, else the user data folder's scan-cache/)."""
    env = os.environ.get("ARFL_STUDIO_SCAN_CACHE")
    return Path(env).expanduser() if env else default_data_dir() / "scan-cache"


def _file_key(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


class ScanCache:
    """The cached header reads of one dataset root under one set of read options."""

    def __init__(self, root: Path, options: dict[str, Any], folder: Path | None = None):
        self.root = root
        self.options = {k: options[k] for k in sorted(options)}
        name = hashlib.sha256(json.dumps([str(root), self.options], default=str).encode()).hexdigest()[:24]
        self.path = (folder or scan_cache_dir()) / f"{name}.json"
        self.lock: FileLock | None = None
        self.note: str | None = None  # why this scan does not write the cache, when it does not
        try:
            self.lock = acquire(self.path.with_suffix(".lock"))
        except LockHeld as exc:
            self.note = f"scan cache in use by another scan ({exc}): this scan's headers are not saved"
        except OSError as exc:
            self.note = f"scan cache not available ({exc.strerror or exc}): an interrupted scan starts again"
        self.files: dict[str, list[Any]] = self._load()
        self.keys: dict[str, list[int] | None] = {}  # this scan's stat of each file it looked up
        self.dirty = False
        self.saved_at = time.monotonic()

    def _load(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        ok = isinstance(doc, dict) and doc.get("format") == CACHE_FORMAT and doc.get("version") == __version__
        return doc["files"] if ok and isinstance(doc.get("files"), dict) else {}

    def _rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    def split(self, paths: Sequence[str | os.PathLike[str]]) -> tuple[dict[str, HeaderResult], list[str]]:
        """(cached results by path, the paths whose header must be read)."""
        cached: dict[str, HeaderResult] = {}
        todo: list[str] = []
        for item in paths:
            path = str(item)
            key = self.keys[path] = _file_key(path)
            entry = self.files.get(self._rel(path))
            result = self._result(path, entry) if key is not None and entry is not None and entry[:2] == key else None
            if result is None:
                todo.append(path)
            else:
                cached[path] = result
        return cached, todo

    @staticmethod
    def _result(path: str, entry: list[Any]) -> HeaderResult | None:
        try:
            header, reason, category = entry[2:5]
            info = HeaderInfo(**{k: v for k, v in header.items() if k in _HEADER_FIELDS}) if header is not None else None
        except (TypeError, ValueError, AttributeError):
            return None  # a damaged entry is read again
        return path, info, reason, category

    def add(self, result: HeaderResult) -> None:
        """Remember one header read (a crashed worker is not remembered: it may not crash again)."""
        path, info, reason, category = result
        key = self.keys.get(path)
        if key is None or reason == HEADER_CRASH_REASON:
            return
        self.files[self._rel(path)] = [*key, asdict(info) if info is not None else None, reason, category]
        self.dirty = True
        if time.monotonic() - self.saved_at >= SAVE_EVERY_S:
            self.save()

    def save(self) -> None:
        if not self.dirty or self.lock is None:
            return
        doc = {"format": CACHE_FORMAT, "version": __version__, "root": str(self.root), "options": self.options, "files": self.files}
        try:
            atomic.write_text(self.path, json.dumps(doc, separators=(",", ":")))
        except OSError as exc:  # a full disk must not end the scan: the headers are in memory
            self.note = f"scan cache not saved ({exc}): an interrupted scan starts again"
            return
        self.dirty = False
        self.saved_at = time.monotonic()

    def close(self) -> None:
        """Save what is new and release the lock (always called, however the scan ends)."""
        try:
            self.save()
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None
