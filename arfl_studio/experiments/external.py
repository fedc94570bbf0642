"""External validation: a run's models scored on another dataset (``arfl-studio evaluate``).

Each fold model, each method's fold ensemble and (``run --final``) its final model score
every image of the dataset, preprocessed as that model trained
(:func:`run_access.external_dataset`). Per model the document gives, over the chosen unit
(image, breast or patient; :mod:`evaluation.units`):

- the AUC with its DeLong 95 % interval (:mod:`evaluation.roc_stats`);
- sensitivity and specificity at the model's stored decision threshold. The ensemble's
  score is the mean logit of its fold models and its threshold the mean of their
  thresholds' logits (a threshold of its own was never chosen);
- the AUC under the run's ``[evaluation]`` attack (its ε unless another is given), the
  ensemble attacked as one model (white-box on the mean logit).

Every row names its unit and counts its images, units, positives and negatives. A
dataset that shares patient IDs with a model's training patients is not external for
that model: each row counts them (``training_overlap``). Qt-free.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from arfl_studio.evaluation.roc_stats import auc_estimate
from arfl_studio.evaluation.units import UNIT_WORDS, aggregate, check_unit
from arfl_studio.experiments import run_access
from arfl_studio.experiments.fold_evaluation import score_logits
from arfl_studio.experiments.fold_plan import derive_seed
from arfl_studio.experiments.run_access import FoldModel
from arfl_studio.training.threshold import operating_point

ENSEMBLE_THRESHOLD = "mean of the fold models' threshold logits"


class ExternalError(ValueError):
    """The run or the dataset cannot be evaluated; the message says why."""


class MeanLogit(nn.Module):
    """A fold ensemble as one model: the mean of its members' logits (attacked as a whole)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x).reshape(-1) for m in self.members]).mean(dim=0)


def scan_external(
    data: str | Path, labels: str | None = None, layout: str = "auto", cancel: threading.Event | None = None
) -> tuple[list, dict]:
    """(records sorted by path, scan summary) of a labelled dataset folder; ExternalError
    ("cancelled") when ``cancel`` is set during the scan."""
    from arfl_studio.data import scan_dataset

    scan = scan_dataset(data, labels=labels, layout=layout, cancel=cancel)
    if scan.cancelled:
        raise ExternalError("cancelled")
    if not scan.images:
        raise ExternalError(f"no labelled images were found in {data} (layout {layout!r}); check --labels/--layout")
    return sorted(scan.images, key=lambda r: str(r.rel_path)), scan.summary()


def models_of(run_dir: str | Path, methods: list[str] | None = None, seed: int | None = None) -> dict[str, list[FoldModel]]:
    """{method: its fold models (one seed folder: ``seed``, default the run's first) then its final model}."""
    seed = run_access.default_seed(run_dir) if seed is None else seed
    folds = [m for m in run_access.fold_models(run_dir) if m.seed == seed]
    finals = [m for m in run_access.final_models(run_dir) if m.seed == seed]
    available = sorted({m.method for m in folds + finals})
    missing = [m for m in methods or [] if m not in available]
    if missing or not available:
        raise ExternalError(f"no finished models for {', '.join(missing) or 'any method'} in {run_dir}")
    return {key: [m for m in folds + finals if m.method == key] for key in methods or available}


def _readable(run_dir, records: list, channels: set[int], cache_dir, cancel) -> tuple[list, int]:
    """The records every model can read (preprocessed into the cache once), and how many could not be."""
    from arfl_studio.data import preprocess_records

    failed: set[int] = set()
    for c in sorted(channels):
        dataset = run_access.external_dataset(run_dir, records, c, cache_dir)
        report = preprocess_records(records, dataset.settings, dataset.cache_dir, cancel=cancel)
        failed |= set(report.failed_indices)
    return [r for i, r in enumerate(records) if i not in failed], len(failed)


def _training_patients(run_dir, model: FoldModel) -> set[str]:
    train, test = run_access.fold_records(run_dir, 0 if model.fold is None else model.fold)
    return {str(r.patient_id) for r in (train + test if model.fold is None else train)}


def _row(
    label: str, kind: str, records: list, scores, threshold: float, unit: str, eps: float | None, trained_on: set[str], **extra
) -> dict:
    """One model's row: AUC (DeLong), rates at ``threshold`` and attacked AUC over ``unit``."""
    targets, clean, adv = scores
    ids, logits, labels = aggregate(records, clean, targets, unit)
    row = {
        "model": label,
        "kind": kind,
        **extra,
        "unit": unit,
        "images": len(records),
        "units": len(ids),
        "positives": int(labels.sum()),
        "negatives": int(len(labels) - labels.sum()),
        "auc": auc_estimate(labels, logits).to_dict(),
        "threshold_logit": threshold,
        **operating_point(labels, logits, threshold),
        "training_overlap": len({str(r.patient_id) for r in records} & trained_on),
        "scores": logits.tolist(),
    }
    if adv is not None:
        attacked = aggregate(records, adv, targets, unit)[1]
        row.update(
            attacked_auc=auc_estimate(labels, attacked).to_dict(),
            eps=eps,
            **{f"attacked_{k}": v for k, v in operating_point(labels, attacked, threshold).items()},
        )
    return row


def evaluate_external(
    run_dir: str | Path,
    records: list,
    *,
    unit: str | None = None,
    eps: float | None = None,
    attack: bool = True,
    methods: list[str] | None = None,
    seed: int | None = None,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """The external-validation document of ``run_dir``'s models on ``records`` (see the module docstring).

    ``unit`` defaults to the run's ``[evaluation] unit``; ``eps`` to its ε; ``attack`` False skips
    the attacked AUC. ``progress(done, total)`` counts models scored; setting ``cancel`` raises
    :class:`ExternalError` ("cancelled") after the model being scored.
    """
    run_dir = Path(run_dir)
    config = run_access.run_config(run_dir)
    unit = check_unit(unit or config.evaluation.unit)
    ev = replace(config.evaluation, eps=float(eps)) if eps is not None else config.evaluation
    device = torch.device(device)
    chosen = models_of(run_dir, methods, seed)
    loaded = {m: run_access.load_fold_model(run_dir, m.method, m.fold, m.seed) for ms in chosen.values() for m in ms}
    records, unreadable = _readable(run_dir, list(records), {spec.in_channels for _, spec in loaded.values()}, cache_dir, cancel)
    labels = aggregate(records, np.zeros(len(records)), [r.label for r in records], unit)[2]
    if len(set(labels.tolist())) < 2:
        raise ExternalError(
            f"AUC needs benign and malignant {unit}s; the dataset has {int(labels.sum())} malignant of {len(labels)} readable {unit}s"
        )
    ensembles = {k: [m for m in ms if m.fold is not None] for k, ms in chosen.items()}
    ensembles = {k: folds for k, folds in ensembles.items() if len(folds) > 1}
    total, done, rows = len(loaded) + len(ensembles), 0, []
    attacked_eps = ev.eps if attack else None

    def score(model: nn.Module, in_channels: int, *seed_key: object) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        nonlocal done
        dataset = run_access.external_dataset(run_dir, records, in_channels, cache_dir)
        # torch takes any map-style data set (__getitem__, __len__); its annotation asks for its own Dataset class
        loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(dataset, batch_size=config.training.eval_batch_size)  # type: ignore[arg-type]
        out = score_logits(
            model.to(device).eval(), loader, device, ev, adversarial=attack, seed=derive_seed(ev.seed, *seed_key), cancel=cancel
        )
        if out is None or (cancel is not None and cancel.is_set()):  # None only when cancelled
            raise ExternalError("cancelled")
        done += 1
        if progress is not None:
            progress(done, total)
        return out

    def model_row(m: FoldModel) -> dict:
        model, spec = loaded[m]
        threshold = run_access.load_fold_threshold(run_dir, m.method, m.fold, m.seed)
        key = ("test", m.fold) if m.fold is not None else ("external", "final")  # a fold model: as in its CV test
        return _row(
            m.label(),
            "final" if m.fold is None else "fold",
            records,
            score(model, spec.in_channels, *key),
            threshold.logit,
            unit,
            attacked_eps,
            _training_patients(run_dir, m),
            method=m.method,
            fold=m.fold,
            seed=m.seed,
            threshold_rule=threshold.rule,
            threshold_chosen_on=threshold.chosen_on,
        )

    for method, members in chosen.items():
        rows += [model_row(m) for m in members if m.fold is not None]
        folds = ensembles.get(method)
        if folds:
            threshold = float(np.mean([run_access.load_fold_threshold(run_dir, method, m.fold, m.seed).logit for m in folds]))
            ensemble = MeanLogit([loaded[m][0] for m in folds])
            rows.append(
                _row(
                    f"{method}, ensemble of {len(folds)} folds",
                    "ensemble",
                    records,
                    score(ensemble, loaded[folds[0]][1].in_channels, "external", "ensemble"),
                    threshold,
                    unit,
                    attacked_eps,
                    set().union(*(_training_patients(run_dir, m) for m in folds)),
                    method=method,
                    folds=[m.fold for m in folds],
                    seed=folds[0].seed,
                    threshold_rule=ENSEMBLE_THRESHOLD,
                )
            )
        rows += [model_row(m) for m in members if m.fold is None]
    return {
        "run": str(run_dir),
        "unit": unit,
        "unit_words": UNIT_WORDS[unit],
        "images": len(records),
        "unreadable_images": unreadable,
        "units": len(labels),
        "positives": int(labels.sum()),
        "negatives": int(len(labels) - labels.sum()),
        "evaluation": {
            "kind": ev.kind,
            "eps": ev.eps,
            "steps": ev.steps,
            "restarts": ev.restarts,
            "attacked": attack,
            "from": "the run's [evaluation]" + (" with eps overridden" if eps else ""),
        },
        "rows": rows,
    }


def _pct(estimate: dict | None) -> str:
    if not estimate:
        return "-"
    return f"{100 * estimate['auc']:.1f} ({100 * estimate['lo']:.1f}–{100 * estimate['hi']:.1f})"


def _rates(sensitivity, specificity) -> str:
    return "-" if sensitivity is None or specificity is None else f"{100 * sensitivity:.0f} / {100 * specificity:.0f}"


def render_table(doc: dict) -> str:
    """The external-validation table (markdown), one row per model, like the CV table."""
    head = [
        "Model",
        "Unit",
        "n (pos / neg)",
        "Images",
        "AUC % (95 % CI)",
        "Sens / spec %",
        "Attacked AUC % (95 % CI)",
        "Its training patients",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + [":-:"] * (len(head) - 1)) + "|"]
    for r in doc["rows"]:
        lines.append(
            "| "
            + " | ".join(
                [
                    r["model"],
                    r["unit"],
                    f"{r['units']} ({r['positives']} / {r['negatives']})",
                    str(r["images"]),
                    _pct(r["auc"]),
                    _rates(r["sensitivity"], r["specificity"]),
                    _pct(r.get("attacked_auc")),
                    str(r["training_overlap"]),
                ]
            )
            + " |"
        )
    ev = doc["evaluation"]
    notes = [
        f"AUC {doc['unit_words']} on {doc['images']} images with DeLong 95 % intervals.",
        "Sens / spec at each model's stored decision threshold; the ensemble scores the mean logit of its "
        f"fold models, at the {ENSEMBLE_THRESHOLD}.",
        (
            f"Attacked: {ev['kind'].upper()} eps={ev['eps']:g} steps={ev['steps']} ({ev['from']}); the ensemble is attacked as one model."
            if ev["attacked"]
            else "Not attacked (--no-attack)."
        ),
    ]
    label_rule = (doc.get("data") or {}).get("label_rule")
    if label_rule:  # VinDr-Mammo and INbreast: a BI-RADS mapping, not pathology
        notes.append(f"Labels: {label_rule}.")
    if doc.get("unreadable_images"):
        notes.append(f"{doc['unreadable_images']} image(s) could not be read and were left out.")
    if any(r["training_overlap"] for r in doc["rows"]):
        notes.append(
            "'Its training patients': how many of the dataset's patient IDs trained (or chose the "
            "threshold of) that model; a row where it is not 0 is not an external validation."
        )
    return "\n".join(lines) + "\n\n" + "\n".join(f"_{n}_  " for n in notes) + "\n"
