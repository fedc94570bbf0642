"""The dataset file walk: every file that could be a DICOM image, and what was skipped and why.

Symbolic links are never followed: a link loop, a link to itself, a broken link or a link
out of the dataset folder would make a scan crash, hang or read someone else's files, and a
link to a file inside the folder would count the same image twice. Each link is listed with
its reason instead. A folder that cannot be listed (PermissionError, I/O error) is listed with
the reason and the walk goes on. Nothing here calls ``Path.resolve()`` on a walked path (it
raises on a link loop).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Iterable

from arfl_studio.data.datasets.reasons import Rejection

# Files never tried as images (tables, notes, our own outputs).
SKIP_SUFFIXES = {
    ".xlsx",
    ".xls",
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".txt",
    ".md",
    ".html",
    ".htm",
    ".xml",
    ".pdf",
    ".py",
    ".zip",
    ".gz",
    ".tar",
    ".npy",
    ".npz",
    ".toml",
    ".log",
    ".db",
    ".sqlite",
    ".lock",
    ".key",
}
SKIP_NAMES = {"DICOMDIR", "Thumbs.db", "desktop.ini"}


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def link_reason(path: str, root: str) -> str:
    """Why a symbolic link is skipped (root is the real path of the dataset folder)."""
    try:
        target = os.readlink(path)
    except OSError as err:
        return f"symbolic link that cannot be read ({err.strerror or type(err).__name__})"
    try:
        os.stat(path)  # follows the link
    except OSError as err:
        if os.path.normpath(os.path.join(os.path.dirname(path), target)) == os.path.normpath(path):
            return "symbolic link to itself"
        if err.errno == errno.ELOOP:
            return f"symbolic link loop ({target})"
        return f"broken symbolic link (target {target} is missing)"
    real = os.path.realpath(path)
    if not _inside(real, root):
        return "symbolic link to a place outside the dataset folder (not followed)"
    kind = "folder" if os.path.isdir(real) else "file"
    return f"symbolic link to a {kind} inside the dataset folder (scanned under its own path)"


def walk_dataset(root: str | os.PathLike[str], skip: Iterable[str | os.PathLike[str]] = ()) -> tuple[list[Path], list[Rejection]]:
    """(candidate files sorted by path, skipped links and unreadable folders with reasons).

    ``root`` should be a real path (no links in it); ``skip`` holds files not to list (the
    labels table).
    """
    root_text = os.path.realpath(os.fspath(root))
    skip_set = {os.path.normpath(os.path.abspath(os.fspath(p))) for p in skip}
    files: list[Path] = []
    skipped: list[Rejection] = []

    def rel(path: str) -> str:
        return Path(os.path.relpath(path, root_text)).as_posix()

    stack = [root_text]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as err:
            if folder == root_text:
                raise
            why = err.strerror or str(err) or type(err).__name__
            skipped.append(Rejection(rel(folder) + "/", f"unreadable folder: {type(err).__name__} ({why})", "unreadable_folder"))
            continue
        subfolders = []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in SKIP_NAMES or name == "__pycache__":
                continue
            path = os.path.join(folder, name)
            try:
                if entry.is_symlink():
                    if Path(name).suffix.lower() not in SKIP_SUFFIXES:
                        skipped.append(Rejection(rel(path), link_reason(path, root_text), "link"))
                    continue
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError as err:
                skipped.append(Rejection(rel(path), f"cannot examine: {err.strerror or type(err).__name__}"))
                continue
            if is_dir:
                subfolders.append(path)
            elif Path(name).suffix.lower() not in SKIP_SUFFIXES and os.path.normpath(path) not in skip_set:
                files.append(Path(path))
        stack.extend(reversed(subfolders))  # depth first, in name order
    files.sort(key=lambda p: Path(os.path.relpath(p, root_text)).parts)
    skipped.sort(key=lambda r: r.path)
    return files, skipped
