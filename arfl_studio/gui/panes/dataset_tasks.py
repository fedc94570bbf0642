"""The Dataset pane's work in a worker and its table rows (no widgets): the scan (and decode),
the patient-level fold preview, and the rows of the image, fold and lesion columns."""

from __future__ import annotations

import gc
import os
from collections import Counter

from arfl_studio.data.datasets.lesions import count_lesions


# header reads in worker processes for a large folder (54,000 RSNA files); below PARALLEL_FROM
# files to read, starting the processes costs more than the reads
SCAN_WORKERS = max(1, min(4, (os.cpu_count() or 1) - 1))
PARALLEL_FROM = 500


def scan_task(
    root: str,
    labels: str | None,
    layout: str,
    folds: int,
    verify: bool = False,
    layout_options: dict | None = None,
    split: str = "patient-cv",
):
    """The worker body: scan (and decode every file when asked) with the pane's label policies
    (``layout_options``), then the fold split."""

    def task(report, cancel):
        from sklearn.model_selection import StratifiedGroupKFold  # noqa: F401 - imported before the freeze

        from arfl_studio.data import scan_dataset, verify_scan

        freeze_startup_objects(again=True)  # the modules just imported are long-lived too
        scan = scan_dataset(
            root,
            labels,
            layout,
            progress=lambda d, t: report(("progress", d, t), lossy=True),
            cancel=cancel,
            layout_options=layout_options,
            workers=SCAN_WORKERS,
            parallel_from=PARALLEL_FROM,
        )
        if verify and not scan.cancelled:
            verify_scan(scan, progress=lambda d, t: report(("verify", d, t), lossy=True), cancel=cancel)
        # the summary, the split and the rows walk every image: here, not on the UI thread
        return {
            "scan": scan,
            "summary": scan.summary(),
            "split": split_task(scan.images, folds, split)(report, cancel),
            "image_rows": image_rows(scan.images),
        }

    return task


def freeze_startup_objects(again: bool = False) -> None:
    """Move what exists now (Qt, torch, pyqtgraph, the data layer's modules ... ~10^6 objects) out of
    the garbage collector's reach: a full collection triggered by a scan's allocations would otherwise
    walk them all with the GIL held and stall the UI thread (measured: 815 ms on a 2,000-image folder).
    Frozen objects are still freed when nothing refers to them; only cycles among them stay."""
    global _FROZEN
    if again or not _FROZEN:
        gc.freeze()
        _FROZEN = True


_FROZEN = False


def split_task(records, k: int, split: str = "patient-cv"):
    """The fold preview, a worker body: {k, split, folds, error, rows, note}. ``split`` as Training's
    ``[cv] split``: ``k`` patient-level folds (sklearn's StratifiedGroupKFold), or the dataset's
    official train/test split (one fold; its training side without the patients in both sets)."""

    def task(report, cancel):
        from arfl_studio.data import patient_folds

        result = {"k": k, "split": split, "folds": None, "error": None, "rows": [], "note": ""}
        try:
            if split == "official":
                result.update(official_rows(records))
            else:
                folds = patient_folds(records, k=k, seed=0)
                result.update(folds=folds, rows=fold_rows(records, folds))
        except Exception as exc:  # too few patients for k folds, one class only, no official split ...
            result["error"] = str(exc)
        return result

    return task


def official_rows(records) -> dict:
    """The official split's two sides as fold rows, and what it leaves out of training."""
    from arfl_studio.data.datasets.splits import official_split

    split = official_split(records)
    tested = set(split.test)
    train = [i for i in range(len(split.records)) if i not in tested]
    rows = fold_rows(split.records, [train, split.test])
    rows[0]["fold"], rows[1]["fold"] = "train", "test"
    note = "The dataset's own train/test split (one fold), the test set as published."
    if split.overlap:
        note += (
            f" {len(split.overlap)} patient(s) are in both official sets: their {len(split.left_out)} training "
            "image(s) are left out of training, so no patient is trained and tested on."
        )
    return {"folds": [split.test], "rows": rows, "note": note}


def image_rows(records) -> list[dict]:
    return [
        {
            "patient_id": r.patient_id,
            "laterality": r.laterality or "?",
            "view": r.view or "?",
            "label_name": "malignant" if r.label == 1 else "benign",
            "lesions": lesion_cell(r),
            "rel_path": r.rel_path,
        }
        for r in records
    ]


def lesion_cell(record) -> str:
    """The image's lesion marks in a table cell: "2" (all placed), "2 (1 unplaced)", or empty."""
    lesions = getattr(record, "lesions", ()) or ()
    unplaced = sum(1 for les in lesions if not les.has_position)
    return "" if not lesions else f"{len(lesions)}" + (f" ({unplaced} unplaced)" if unplaced else "")


def lesion_summary(records) -> str:
    """The summary row: how many marks on how many images, by type and pathology."""
    c = count_lesions(records)
    if not c["lesions"]:
        return "none (no lesion marks in this dataset)"
    parts = [f"{c['lesions']} on {c['images_with_lesions']} images"]
    if c["positioned"] < c["lesions"]:
        parts.append(f"{c['lesions'] - c['positioned']} without a position")
    parts.append(", ".join(f"{k}: {v}" for k, v in c["by_type"].items()))
    parts.append(", ".join(f"{k}: {v}" for k, v in c["by_pathology"].items()))
    return "; ".join(parts)


def fold_rows(records, folds) -> list[dict]:
    rows = []
    for k, held_out in enumerate(folds):
        labels = Counter(records[i].label for i in held_out)
        n = len(held_out)
        rows.append(
            {
                "fold": k + 1,
                "patients": len({records[i].patient_id for i in held_out}),
                "images": n,
                "malignant": labels.get(1, 0),
                "benign": labels.get(0, 0),
                "share": f"{labels.get(1, 0) / n:.0%}" if n else "-",
            }
        )
    return rows
