"""The viewer's worker tasks (Qt-free): load a case, a patient's four views, export a figure.

Each returns a ``task(report, cancel)`` for :func:`arfl_studio.gui.workers.start_task`.
A case is loaded with the run's own preprocessing and cache (so the model sees the
very input the Attack pane attacked), with the patient's other views of the fold for
the four-view layout.
"""

from __future__ import annotations

import numpy as np

from arfl_studio.evaluation import case_analysis
from arfl_studio.experiments import run_access


def tags_of(record) -> list[dict]:
    try:
        return case_analysis.dicom_tags(record.path)
    except Exception as exc:  # the picture matters more than the header
        return [{"tag": "", "keyword": "error", "value": str(exc), "phi": False}]


def table_deltas(request: dict) -> dict:
    """{method: δ} kept by the attack that listed the case: ``case["delta"]`` (model space,
    (C, H, W) or (H, W)), ``request["delta"]``, or a callable ``request["case_delta"]()``
    (e.g. ``lambda: report.case_delta(eps, index)``)."""
    case = request.get("case") or {}
    delta = case.get("delta")
    if delta is None:
        delta = request.get("delta")
    if delta is None and callable(request.get("case_delta")):
        delta = request["case_delta"]()
    return {request["method"]: np.asarray(delta, dtype=np.float32)} if delta is not None else {}


def attack_settings_of(request: dict) -> dict:
    """Steps, restarts, step size and seed of the attack that listed the case (what it kept)."""
    case = request.get("case") or {}
    settings = dict(request.get("attack_settings") or {})
    settings.update(case.get("attack_settings") or {})
    return settings


def threshold_of(run_dir, key: str, fold: int, seed: int | None = None) -> dict | None:
    """The model's stored decision threshold as P(malignant) (None when it cannot be read)."""
    import math

    try:
        t = run_access.load_fold_threshold(run_dir, key, fold, seed)
    except Exception:  # an older run or checkpoint: the verdict is simply not shown
        return None
    return {"prob": 1.0 / (1.0 + math.exp(-max(min(t.logit, 80), -80))), "rule": t.rule}


def stored_logits(run_dir, keys: list[str], fold: int, seed: int | None) -> dict[str, float]:
    """Each model's stored decision threshold as a logit (models without one are left out: logit 0)."""
    out = {}
    for key in keys:
        try:
            out[key] = run_access.load_fold_threshold(run_dir, key, fold, seed).logit
        except Exception:  # an older run or checkpoint  # noqa: BLE001
            continue
    return out


def opened_view(views: dict, record) -> dict:
    """``views`` when the view the user opened could be read; else its reason is the load's error
    (the other views of a patient may fail alone: they show a placeholder)."""
    from arfl_studio.data import MammogramReadError
    from arfl_studio.evaluation.hanging import name_of

    failed = views.get(name_of(views, record), {})
    if "error" in failed:
        raise MammogramReadError(failed["error"])
    return views


def case_task(request: dict, keys: list[str], saliency: str):
    """Two models on one case, and the first model on all the patient's views of the fold."""
    run_dir, fold, record = request["run_dir"], int(request["fold"]), request["record"]
    seed = request.get("seed")  # the seed folder of a several-seed run (None: the run's first)
    settings_kept = attack_settings_of(request)
    attack = settings_kept.get("attack") or request.get("attack", "pgd")
    eps = float(settings_kept.get("eps") or request.get("eps") or 0.01)

    def task(report, cancel):
        from arfl_studio.data import MammogramDataset

        loaded = {k: run_access.load_fold_model(run_dir, k, fold, seed) for k in keys}
        models = {k: m.eval() for k, (m, _spec) in loaded.items()}
        # the models' own recorded input (the same for every method of a run)
        settings = run_access.model_preprocess(run_access.fold_checkpoint(run_dir, keys[0], fold, seed), loaded[keys[0]][1].in_channels)
        cache = getattr(run_access.run_config(run_dir).data, "cache_dir", None)

        def model_input(r):
            return MammogramDataset([r], settings, cache_dir=cache)[0][0]

        x, y = MammogramDataset([record], settings, cache_dir=cache)[0]
        image = case_analysis.native_image(record.path, settings)
        result = case_analysis.analyse_case(
            models,
            x,
            float(y),
            attack,
            eps,
            saliency,
            deltas=table_deltas(request),
            attack_settings=settings_kept,
            thresholds=stored_logits(run_dir, keys, fold, seed),
        )
        image.update(model_input=result["image"], models=result["models"])
        case_analysis.add_native_maps(image)
        case_analysis.add_lesions(image, record)
        if cancel.is_set():
            return None
        try:
            patient = [r for r in run_access.fold_records(run_dir, fold)[1] if r.patient_id == record.patient_id]
        except (OSError, ValueError):
            patient = [record]
        first = {keys[0]: models[keys[0]]}
        views = case_analysis.four_views(
            patient or [record], record.patient_id, settings, first, attack, eps, saliency, settings_kept, model_input, cancel
        )
        return {
            "case": image,
            "views": views,
            "target": float(y),
            "attack": attack,
            "eps": eps,
            "saliency": saliency,
            "tags": tags_of(record),
            "record": record,
            "thresholds": {k: threshold_of(run_dir, k, fold, seed) for k in keys},
        }

    return task


def views_task(records, record):
    """A dataset image: the patient's views as acquired (no model)."""

    def task(report, cancel):
        from arfl_studio.data import PreprocessSettings

        views = case_analysis.four_views(list(records), record.patient_id, PreprocessSettings(), cancel=cancel)
        return {"views": opened_view(views, record), "tags": tags_of(record), "record": record}

    return task


SIBLINGS_READ = 24  # files of the opened file's folder whose headers are read to find the patient's other views


def file_record(path):
    """An image record for a DICOM file opened on its own (no dataset, so no label: ``label`` is None)."""
    from pathlib import Path

    from arfl_studio.data import read_header
    from arfl_studio.data.datasets.layouts import ImageRecord

    header = read_header(path, include_non_mammograms=True, include_for_processing=True)
    return ImageRecord(
        path=Path(path),
        rel_path=Path(path).name,
        patient_id=header.patient_id or "",
        laterality=header.laterality or "?",
        view=header.view or "image",
        label=None,
    )


def files_task(paths):
    """DICOM files opened by the user (command line, file manager, drop): the first file and the
    same patient's other views from the files given or, for one file, from its folder."""

    def task(report, cancel):
        from pathlib import Path

        from arfl_studio.data import MammogramReadError, PreprocessSettings

        record = file_record(paths[0])  # its reason, when it is no mammogram, is the task's error
        others = (
            list(paths[1:]) or sorted(p for p in Path(paths[0]).parent.iterdir() if p.is_file() and p != Path(paths[0]))[:SIBLINGS_READ]
        )
        records = [record]
        for other in others:
            try:
                records.append(file_record(other))
            except (MammogramReadError, OSError):
                continue  # not a DICOM of this study: it is simply not shown
        records = [r for r in records if r.patient_id == record.patient_id]
        views = case_analysis.four_views(records, record.patient_id, PreprocessSettings(), cancel=cancel)
        return {"views": opened_view(views, record), "tags": tags_of(record), "record": record}

    return task


def export_task(panels: list[dict], path: str, colormap, levels, colorbar_label: str, caption: str):
    """``panels``: [{"title", "gray", "heat" (callable or None), "opacity", "gray_levels", "invert",
    "heat_levels", "aspect", "position" (row, column as on screen)}] blended here at full resolution,
    then one figure to ``path`` laid out like the screen."""

    def task(report, cancel):
        from arfl_studio.evaluation.saliency import overlay_figure
        from arfl_studio.evaluation.blend import blend_lut

        lut = np.asarray(colormap, dtype=np.float32)
        rendered = []
        for p in panels:
            heat = p["heat"]() if callable(p["heat"]) else p["heat"]
            rendered.append((p["title"], blend_lut(p["gray"], heat, lut, p["opacity"], p["heat_levels"], p["gray_levels"], p["invert"])))
            if cancel.is_set():
                return None
        overlay_figure(
            rendered,
            path,
            colormap=lut,
            levels=levels,
            colorbar_label=colorbar_label,
            caption=caption,
            aspect=panels[0].get("aspect", 1.0),
            positions=[p.get("position", (0, i)) for i, p in enumerate(panels)],
        )
        return path

    return task
