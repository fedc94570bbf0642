"""The dataset scan: detect the layout, walk the tree, read headers, let the layout label.

One module per layout (the dataset's own documentation is named in each):
``cmmd``, ``cbis_ddsm``, ``vindr``, ``inbreast``, ``rsna``, ``csv_folder`` (folder +
labels CSV + optional lesions.csv) and ``folders`` (folder per class). Each is detected
when a folder is opened, or forced with ``layout``.

``scan_dataset`` walks the tree recursively (folder names are not trusted; links are not
followed, see ``walk``), reads headers only, and never stops on a bad file: each one is listed
in ``rejected`` with a one-line reason and a category (``reasons.CATEGORIES``). Images whose
breast has no label go to ``unlabeled``; readable files that are not training images (masks,
crops, unlabelled test sets, BI-RADS categories the mapping excludes) go to ``excluded`` with
why; label rows with no image go to ``labels_without_images``. ``verify=True`` (or
``verify_scan`` afterwards) decodes every usable image in parallel and moves the ones that fail
to ``rejected``.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from arfl_studio.data.datasets.cbis_ddsm import CbisDdsmLayout
from arfl_studio.data.datasets.cmmd import CmmdLayout, find_cmmd_table
from arfl_studio.data.datasets.csv_folder import LABEL_TABLES, CsvLayout
from arfl_studio.data.datasets.file_jobs import HeaderResult, read_headers, verify_files
from arfl_studio.data.datasets.folders import FoldersLayout
from arfl_studio.data.datasets.inbreast import InbreastLayout
from arfl_studio.data.datasets.layout_names import LAYOUTS
from arfl_studio.data.datasets.labels import (
    CMMD_COLUMNS,
    CMMD_TABLE_NAMES,
    LABEL_NAMES,
    LayoutError,
    looks_like_cmmd,
    parse_label,
    read_cmmd_labels,
    table_columns,
)
from arfl_studio.data.datasets.reasons import Rejection
from arfl_studio.data.datasets.records import ImageRecord, ScanResult
from arfl_studio.data.datasets.rsna import RsnaLayout
from arfl_studio.data.datasets.scan_cache import ScanCache
from arfl_studio.data.datasets.vindr import VindrLayout
from arfl_studio.data.datasets.walk import walk_dataset

__all__ = [
    "CMMD_COLUMNS",
    "CMMD_TABLE_NAMES",
    "ImageRecord",
    "LABEL_NAMES",
    "LAYOUTS",
    "LayoutError",
    "ScanResult",
    "detect_layout",
    "parse_label",
    "read_cmmd_labels",
    "scan_dataset",
    "verify_scan",
]

LAYOUT_CLASSES = {cls.name: cls for cls in (CmmdLayout, CbisDdsmLayout, VindrLayout, InbreastLayout, RsnaLayout, CsvLayout, FoldersLayout)}


def detect_layout(
    root: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None, path_column: str = "path"
) -> tuple[str, Path | None]:
    """(layout name, its table or None); raises LayoutError when nothing fits.

    The public datasets are recognised by their own tables (CBIS-DDSM's case descriptions,
    VinDr's breast-level_annotations.csv, INbreast.xls/csv, RSNA's train.csv), then CMMD's
    clinical table, then labels.csv, then benign/ and malignant/ folders.
    """
    root = Path(root)
    if labels is not None:
        labels = Path(labels)
        return ("cmmd" if looks_like_cmmd(table_columns(labels), path_column) else "csv"), labels
    for cls in (CbisDdsmLayout, VindrLayout, InbreastLayout, RsnaLayout):
        table = cls.detect(root)
        if table is not None:
            return cls.name, table
    table = find_cmmd_table(root)
    if table is not None:
        return "cmmd", table
    for name in LABEL_TABLES:
        if (root / name).is_file():
            return "csv", root / name
    if FoldersLayout.detect(root):
        return "folders", None
    raise LayoutError(
        f"cannot tell the layout of {root}: no CBIS-DDSM, VinDr-Mammo, INbreast or RSNA tables, no CMMD clinical "
        f"table ({CMMD_TABLE_NAMES[0]}), no labels.csv and no benign/ or malignant/ folders; pass --labels FILE "
        "or --layout"
    )


# ---------------------------------------------------------------- scan


def _rel(root: Path, path: str | Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _dataset_root(root: str | os.PathLike[str]) -> Path:
    """The real path of a readable dataset folder, else LayoutError with a one-line reason."""
    real = Path(os.path.realpath(os.path.expanduser(os.fspath(root))))
    if not real.is_dir():
        raise LayoutError(f"not a folder: {root}")
    try:
        with os.scandir(real):
            pass
    except OSError as err:
        raise LayoutError(f"cannot read the dataset folder {real}: {err.strerror or type(err).__name__}") from None
    return real


def scan_dataset(
    root: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    layout: str = "auto",
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    *,
    workers: int = 1,
    parallel_from: int = 0,
    path_column: str = "path",
    patient_column: str = "patient",
    label_column: str = "label",
    include_non_mammograms: bool = False,
    include_for_processing: bool = False,
    frame: int | None = None,
    verify: bool = False,
    layout_options: dict[str, Any] | None = None,
    label_map: dict[str, object] | None = None,
    scan_cache: bool = True,
) -> ScanResult:
    """Scan a dataset folder: which images are usable, their labels, and what is wrong.

    ``layout`` is "auto" (detect) or one of ``LAYOUTS``. ``labels`` is the layout's table (the
    CMMD clinical table, the labels CSV, ...). ``layout_options`` are the layouts' visible label
    policies: ``cmmd_missing`` ("unlabeled" | "negative"), ``birads_positive`` /
    ``birads_negative`` (VinDr, INbreast). ``progress(done, total)`` is called after each file
    (and, with ``verify``, again from 0 for the decode pass); setting ``cancel`` stops early with
    ``cancelled=True``. By default non-mammograms, FOR PROCESSING images and multi-frame images
    are rejected with their reason; ``include_*`` keeps the first two, ``frame`` (1-based) takes
    that frame of multi-frame files. ``verify`` decodes every usable image (slower; see
    ``verify_scan``). Labels are the layout's words (``labels.LABEL_VOCABULARY``) and those
    ``label_map`` maps to 0/1 (or benign/malignant); any other label refuses its image.
    ``scan_cache`` keeps every header read in the user's scan cache (:mod:`scan_cache`): an
    interrupted scan resumes, a re-scan reads only new or changed files; the summary says how
    many headers came from it. ``workers`` processes read the headers, once at least
    ``parallel_from`` are left to read (the GUI's scans: a small folder is read faster in-process).
    """
    start = time.perf_counter()
    root = _dataset_root(root)
    if layout not in LAYOUTS:
        raise LayoutError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if frame is not None and (isinstance(frame, bool) or not isinstance(frame, int) or frame < 1):
        raise LayoutError(f"frame must be a whole number from 1 (the first frame), not {frame!r}")
    labels_path = Path(os.path.realpath(os.path.expanduser(os.fspath(labels)))) if labels is not None else None
    if labels_path is not None and not labels_path.is_file():
        raise LayoutError(f"labels file not found: {labels_path}")
    if layout == "auto":
        layout, labels_path = detect_layout(root, labels_path, path_column)
    options = {
        "path_column": path_column,
        "patient_column": patient_column,
        "label_column": label_column,
        "label_map": label_map,
        **(layout_options or {}),
    }
    reader = LAYOUT_CLASSES[layout](root, labels_path, options)
    result = ScanResult(
        root=root,
        layout=layout,
        options={
            "include_non_mammograms": include_non_mammograms,
            "include_for_processing": include_for_processing,
            "frame": frame,
            "verify": verify,
            **(layout_options or {}),
        },
    )
    result.label_rule = reader.label_rule

    files, skipped = walk_dataset(root, skip=[reader.table] if reader.table else ())
    result.rejected.extend(skipped)
    result.files_seen = len(files) + len(skipped)
    wanted = []
    for path in files:
        why = reader.prefilter(_rel(root, path))
        if why is None:
            wanted.append(path)
        else:
            result.excluded.append((_rel(root, path), why))
    headers = _read_headers_cached(
        root,
        wanted,
        result,
        scan_cache,
        parallel_from,
        workers=workers,
        progress=progress,
        cancel=cancel,
        include_non_mammograms=include_non_mammograms or reader.accepts_stripped_headers,
        include_for_processing=include_for_processing,
        frame=frame,
    )
    readable = []
    for read_path, info, reason, category in headers:
        rel = _rel(root, read_path)
        if info is None:
            result.rejected.append(Rejection(rel, reason or "unreadable", category or "unreadable"))
        else:
            readable.append((rel, read_path, info))
    reader.assign(readable, result, frame)
    if not result.cancelled:
        reader.finish(result)
    if verify and not result.cancelled:
        verify_scan(result, workers=workers, progress=progress, cancel=cancel)
    result.seconds = time.perf_counter() - start
    return result


def _read_headers_cached(
    root: Path,
    paths: list[Path],
    result: ScanResult,
    use_cache: bool,
    parallel_from: int,
    *,
    progress: Callable[[int, int], None] | None,
    **read: Any,
) -> list[HeaderResult]:
    """The headers of ``paths`` in their order: from the scan cache where the file is unchanged,
    read (and cached as they arrive) otherwise; sets ``result``'s cache counts and ``cancelled``.
    Fewer than ``parallel_from`` headers to read are read in this process."""
    options = {k: read[k] for k in ("include_non_mammograms", "include_for_processing", "frame")}
    cache = ScanCache(root, options) if use_cache else None
    try:
        cached, todo = cache.split(paths) if cache is not None else ({}, [str(p) for p in paths])
        if len(todo) < parallel_from:  # starting worker processes costs more than these reads
            read["workers"] = 1
        offset = len(cached)
        shifted = (lambda done, total: progress(offset + done, offset + total)) if progress else None
        fresh, result.cancelled = read_headers(todo, progress=shifted, on_result=cache.add if cache else None, **read)
    finally:
        if cache is not None:
            cache.close()  # Ctrl-C (KeyboardInterrupt) too: what was read is kept
    if cache is not None and cache.note:
        result.notes.append(cache.note)
    result.headers_cached, result.headers_read = len(cached), len(fresh)
    by_path = {**cached, **{item[0]: item for item in fresh}}
    return [by_path[str(p)] for p in paths if str(p) in by_path]


def verify_scan(
    result: ScanResult, workers: int = 1, progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None
) -> ScanResult:
    """Decode every image of a scan (spawn process pool); failures move to ``rejected``.

    Usable from the GUI's worker thread after a header scan. On cancel the images not yet
    decoded stay in ``images`` and ``verified`` stays False.
    """
    frames = {r.rel_path: r.frame for r in result.images}
    by_frame: dict[int | None, list[ImageRecord]] = {}
    for record in result.images:
        by_frame.setdefault(frames[record.rel_path], []).append(record)
    failed: dict[str, tuple[str, str]] = {}
    cancelled = False
    for frame, records in by_frame.items():
        outcomes, cancelled = verify_files([r.path for r in records], workers=workers, progress=progress, cancel=cancel, frame=frame)
        by_path = {str(r.path): r for r in records}
        for path, reason, category in outcomes:  # matched by path: a cancelled pass returns a subset
            if reason is not None:
                failed[by_path[path].rel_path] = (reason, category or "undecodable")
        if cancelled:
            break
    result.images = [r for r in result.images if r.rel_path not in failed]
    result.rejected.extend(Rejection(rel, reason, category) for rel, (reason, category) in sorted(failed.items()))
    result.cancelled = result.cancelled or cancelled
    result.verified = not cancelled
    result.options["verify"] = True
    return result
