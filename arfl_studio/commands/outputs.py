"""Where a command writes, checked before the work starts.

Each command declares its output options (:func:`declare_outputs`); ``cli.main`` checks them
with :func:`check_outputs` before calling the command, so a run of hours never ends in "cannot
write". A file output must not be a folder, its folder must be creatable and writable, and an
existing file is refused unless ``--force`` is given (the program never silently replaces a file
it did not write; a run folder's own files are the program's and are not outputs here). What can
only fail during the write (a full disk) is reported by the atomic writer as
:class:`arfl_studio.atomic.WriteError`, which ``cli.main`` prints as one line with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """An output cannot (or may not) be written: "cannot write PATH: reason"."""


def declare_outputs(parser: argparse.ArgumentParser, files: tuple[str, ...] = ("json",), folders: tuple[str, ...] = ()) -> None:
    """Name the options (argparse ``dest``) that hold output files and folders; adds ``--force``."""
    parser.add_argument("--force", action="store_true", help="replace output files that already exist (default: refuse them)")
    parser.set_defaults(output_files=files, output_folders=folders)


def _existing_ancestor(path: Path) -> Path:
    """The nearest part of ``path`` that exists (what a write would create folders under)."""
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_folder_writable(shown: Path, folder: Path) -> None:
    """``folder`` (existing) must be a folder this process can create files in."""
    if not folder.is_dir():
        raise OutputError(f"cannot write {shown}: {folder} is a file, not a folder")
    try:  # an unnamed file, gone when closed: leaves nothing behind (and root is not fooled by modes)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {folder}: {exc.strerror or exc}") from None


def check_writable(path: str | os.PathLike, kind: str = "file", force: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written (or an existing file without ``force``).

    ``kind`` is "file" or "folder". Raises :class:`OutputError` naming the path and the reason.
    """
    shown = Path(os.path.expanduser(os.fspath(path)))
    target = Path(os.path.realpath(shown)) if shown.is_symlink() else shown  # written through
    if kind == "folder":
        if target.exists():
            _check_folder_writable(shown, target)
            return
    elif target.is_dir():
        raise OutputError(f"cannot write {shown}: it is a folder (give a file name)")
    elif target.exists() and not force:
        raise OutputError(f"{shown} already exists; give --force to replace it")
    _check_folder_writable(shown, _existing_ancestor(target.parent if kind == "file" else target))


def check_outputs(args: argparse.Namespace) -> None:
    """Check every declared output option that was given (see :func:`declare_outputs`)."""
    force = bool(getattr(args, "force", False))
    for dest in getattr(args, "output_files", ()):
        if getattr(args, dest, None):
            check_writable(getattr(args, dest), "file", force)
    for dest in getattr(args, "output_folders", ()):
        if getattr(args, dest, None):
            check_writable(getattr(args, dest), "folder", force)
