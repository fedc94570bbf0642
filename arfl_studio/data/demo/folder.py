"""The demo folder is shared with its user: only the generator's own files are touched.

- A non-empty folder without a demo manifest is refused.
- Replacing an earlier demo removes only the files the generator writes (recognised by
  their exact names), so a user's notes or run folders kept inside stay.
- Generation writes into a hidden sibling ``.NAME.partial-PID`` and moves its files in
  at the end; one left by a killed process is removed on the next run, and only when
  its process is gone and it holds nothing but the generator's files.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from arfl_studio.atomic import process_alive

CLINICAL_TABLE = "CMMD_clinicaldata_revision.xlsx"
MANIFEST = "demo_manifest.json"
_IMAGE = re.compile(r"^CMMD/D1-\d{4}/07-18-2010-NA-NA-\d{5}/1\.000000-NA-\d{5}/1-\d+\.dcm$")
_ATOMIC_TEMP = re.compile(r"^(.*/)?\..+\.p\d+\.[A-Za-z0-9_]{8}\.tmp$")
_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


def is_generated(rel_path: str) -> bool:
    """True for a path (relative, '/'-separated) that the generator writes."""
    return rel_path in (CLINICAL_TABLE, MANIFEST) or bool(_IMAGE.match(rel_path))


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


def check_target(out_dir: Path) -> None:
    """Raise FileExistsError unless ``out_dir`` is missing, empty or a demo dataset."""
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file, not a folder; choose a new or empty folder for the demo data")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST).is_file():
        raise FileExistsError(
            f"{out_dir} is not empty and holds no demo dataset ({MANIFEST} is missing); choose a new or empty folder for the demo data"
        )


def _remove_empty_dirs(root: Path, below: Path) -> None:
    for folder in sorted((p for p in below.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: -len(p.parts)):
        try:
            folder.rmdir()  # only succeeds when empty
        except OSError:
            pass


def install(work: Path, out_dir: Path) -> None:
    """Move the finished ``work`` folder's files into ``out_dir``.

    Into a missing or empty folder this is one rename. Over an earlier demo, the new
    files replace the old one by one, old generated files not written again are
    removed, the manifest comes last (so an interrupted move still reads as the
    earlier demo and is regenerated), and anything else in the folder stays.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if not out_dir.exists():
        os.replace(work, out_dir)
        return
    new = _files(work)
    for rel in new:
        if rel == MANIFEST:
            continue
        target = out_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(work / rel, target)
    keep = set(new)
    for rel in _files(out_dir):
        if rel not in keep and is_generated(rel):
            (out_dir / rel).unlink()
    if (out_dir / "CMMD").is_dir():
        _remove_empty_dirs(out_dir, out_dir / "CMMD")
        if not any((out_dir / "CMMD").iterdir()):
            (out_dir / "CMMD").rmdir()
    os.replace(work / MANIFEST, out_dir / MANIFEST)
    shutil.rmtree(work)


def partial_folder(out_dir: Path) -> Path:
    return out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove ``.NAME.partial-PID`` folders of dead processes that hold only generator files."""
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    for folder in parent.iterdir():
        match = _PARTIAL.match(folder.name)
        if not match or not folder.is_dir() or folder.is_symlink():
            continue
        pid = int(match["pid"])
        if pid == os.getpid() or process_alive(pid):
            continue
        files = _files(folder)
        if any(not (is_generated(rel) or _ATOMIC_TEMP.match(rel)) for rel in files):
            continue  # something we did not write: leave it to its owner
        if any(p.is_symlink() for p in folder.rglob("*")):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
