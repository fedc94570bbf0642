"""Where does each method's model look? Localisation over a run's held-out patients.

Every image with a positioned lesion is read once, preprocessed exactly as the run
trained, and each method's fold model that held that patient out makes a saliency map
(``evaluation.saliency``; target = the malignant class, whose input-gradient magnitude
is the paper's Figure 5 map). The map is brought back to the native grid through the
preprocessing geometry and measured there against the lesion marks and the breast
mask (``evaluation.localisation``). With ``data`` another dataset with lesions is used
instead, scored by one fold model per method (``fold``, default the first).

The result document has one row per method with the chance levels beside it, the
paired tests between methods (same images), and per-image rows; :func:`render_table`
writes it as md / csv / tex next to the AUC tables. No Qt.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from arfl_studio.evaluation.localisation import DEFAULT_TOLERANCE_MM, Localisation, localise, paired_tests, summarise
from arfl_studio.experiments import run_access

TABLE_FORMATS = ("md", "csv", "tex")


class LocalisationError(ValueError):
    """The run or dataset cannot be measured; the message says why."""


def positioned(records: list) -> list:
    """Records with at least one lesion that has a position (the only ones localisation can score)."""
    return [r for r in records if any(les.has_position for les in getattr(r, "lesions", ()))]


def measure_image(record, models: dict, settings, saliency: str, tolerance_mm: float, root=None, target: int = 1) -> tuple[dict, dict]:
    """({method: Localisation}, image facts) for one record and one model per method."""
    import torch

    from arfl_studio.data import read_mammogram
    from arfl_studio.data.datasets.lesions import lesion_mask
    from arfl_studio.data.preprocess.crop import native_breast_mask
    from arfl_studio.data.preprocess.geometry import model_to_native
    from arfl_studio.data.preprocess.transform import preprocess_pixels
    from arfl_studio.evaluation.saliency import saliency_map

    mammogram = read_mammogram(record.path, frame=getattr(record, "frame", None))
    pixels = mammogram.pixels
    gray, geometry = preprocess_pixels(pixels, settings, spacing=mammogram.pixel_spacing)
    lesions = lesion_mask(record.lesions, pixels.shape, root)
    breast = native_breast_mask(pixels, settings.crop)
    out = {}
    for key, (model, spec) in models.items():
        image = torch.from_numpy(np.broadcast_to(gray, (spec.in_channels, *gray.shape)).copy()).float()
        values = saliency_map(model, image, saliency, target)
        native = model_to_native(values, geometry, settings.fit)
        out[key] = localise(native, lesions, breast, mammogram.pixel_spacing, tolerance_mm)
    facts = {
        "path": record.rel_path,
        "patient_id": record.patient_id,
        "label": int(record.label),
        "lesions": len(record.lesions),
        "pixel_spacing_mm": list(mammogram.pixel_spacing or ()) or None,
    }
    return out, facts


def _scan_records(data: str, labels: str | None, layout: str) -> tuple[list, Path, str]:
    from arfl_studio.data import scan_dataset

    scan = scan_dataset(data, labels=labels, layout=layout)
    return list(scan.images), scan.root, getattr(scan, "label_rule", "") or ""


def localisation_over_run(
    run_dir: str | Path,
    *,
    methods: list[str] | None = None,
    saliency: str = "gradient",
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    data: str | None = None,
    labels: str | None = None,
    layout: str = "auto",
    fold: int = 0,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """The localisation document of a run (see the module docstring)."""
    run_dir = Path(run_dir)
    available = run_access.run_methods(run_dir)
    methods = methods or available
    missing = [m for m in methods if m not in available]
    if missing or not methods:
        raise LocalisationError(f"no finished models for {', '.join(missing) or 'any method'} in {run_dir}")
    seed = run_access.default_seed(run_dir)
    folds = sorted(set.intersection(*(set(run_access.run_folds(run_dir, m, seed)) for m in methods)))
    root: str | Path | None  # the folder lesion mask paths are relative to
    if data is not None:
        if fold not in folds:
            raise LocalisationError(f"fold {fold + 1} has no finished model for every method")
        records, root, label_rule = _scan_records(data, labels, layout)
        jobs = [(fold, positioned(records))]
        where = f"dataset {Path(data).name}, fold {fold + 1} models"
    else:
        splits = run_access.splits_document(run_dir)
        root = splits.get("root")  # lesion masks are relative to it
        label_rule = str(splits.get("label_rule") or "")
        jobs = [(k, positioned(run_access.fold_records(run_dir, k)[1])) for k in folds]
        where = "held-out patients of each fold"
    if limit:
        jobs = [(k, recs[:limit]) for k, recs in jobs]
    total = sum(len(recs) for _, recs in jobs)
    if total == 0:
        raise LocalisationError(
            f"no image with a positioned lesion among the {where} (lesions come from the "
            "dataset's lesion marks, e.g. lesions.csv beside labels.csv)"
        )
    per_method: dict[str, list[Localisation]] = {m: [] for m in methods}
    images, skipped, done = [], [], 0
    for k, records in jobs:
        models = {}
        for m in methods:
            model, spec = run_access.load_fold_model(run_dir, m, k, seed)
            models[m] = (model.eval(), spec)
        settings, _ = run_access.preprocess_settings(run_dir, next(iter(models.values()))[1].in_channels)
        for record in records:
            if cancel is not None and cancel.is_set():
                break
            try:
                scores, facts = measure_image(record, models, settings, saliency, tolerance_mm, root)
            except (ValueError, OSError) as err:  # unreadable image or mask: listed, never fatal
                skipped.append({"path": record.rel_path, "reason": str(err).splitlines()[0]})
            else:
                for m in methods:
                    per_method[m].append(scores[m])
                images.append({**facts, "fold": k, "scores": {m: scores[m].to_dict() for m in methods}})
            done += 1
            if progress is not None:
                progress(done, total)
    rows = [{"method": m, **summarise(per_method[m])} for m in methods]
    return {
        "run": str(run_dir),
        "evaluated_on": where,
        "label_rule": label_rule,
        "saliency": saliency,
        "target": "malignant",
        "tolerance_mm": tolerance_mm,
        "seed": seed,
        "space": "native",
        "rows": rows,
        "paired_tests": paired_tests(per_method),
        "images": images,
        "skipped": skipped,
        "cancelled": bool(cancel is not None and cancel.is_set()),
    }


def _fmt(value, pct: bool = True) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}" if pct else f"{value:.3g}"


def render_table(doc: dict, fmt: str = "md") -> str:
    """The per-method table (percentages) with chance beside each metric, and the paired tests."""
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"table format must be one of {TABLE_FORMATS}, got {fmt!r}")
    head = [
        "Method",
        "Images",
        "Pointing %",
        "Chance %",
        "Energy in lesions %",
        "Chance %",
        "Energy off breast %",
        "Median peak distance (mm)",
    ]
    body = [
        [
            r["method"],
            str(r["images"]),
            _fmt(r["pointing"]),
            _fmt(r["chance_pointing"]),
            _fmt(r["energy_inside"]),
            _fmt(r["chance"]),
            _fmt(r["energy_off_breast"]),
            _fmt(r["median_peak_distance_mm"], pct=False),
        ]
        for r in doc["rows"]
    ]
    tests = [
        f"{t['first']} vs {t['second']} ({t['images']} images): pointing McNemar p = {_fmt(t['pointing']['p'], False)}, "
        f"energy in lesions Wilcoxon p = {_fmt(t['energy_inside']['p'], False)}"
        for t in doc["paired_tests"]
    ]
    note = (
        f"{doc['saliency']} saliency (target malignant) in native space on the {doc['evaluated_on']}; "
        f"pointing game tolerance {doc['tolerance_mm']:g} mm; chance = lesion area / breast area"
        + (f"; labels: {doc['label_rule']}" if doc.get("label_rule") else "")
    )
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerows([head, *body])
        return buf.getvalue()
    if fmt == "tex":
        lines = [
            r"\begin{tabular}{l" + "r" * (len(head) - 1) + "}",
            r"\toprule",
            " & ".join(h.replace("%", r"\%") for h in head) + r" \\",
            r"\midrule",
        ]
        lines += [" & ".join(row) + r" \\" for row in body]
        lines += [r"\bottomrule", r"\end{tabular}", "% " + note] + ["% " + t for t in tests]
        return "\n".join(lines) + "\n"
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines + ["", note + "."] + [f"- {t}" for t in tests]) + "\n"


def export_table(doc: dict, path: str | Path, fmt: str | None = None) -> Path:
    """Write :func:`render_table` atomically; the format from ``fmt`` or the suffix."""
    from arfl_studio import atomic

    path = Path(path)
    return atomic.write_text(path, render_table(doc, fmt or path.suffix.lstrip(".").lower() or "md"))
