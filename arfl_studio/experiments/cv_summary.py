"""A cross-validated run on one page: per method its fold AUCs (mean and sd), the pooled
out-of-fold AUC with its DeLong interval, the seconds each fold took, and how many images each
was computed on. Scores are recomputed from the fold models on their own held-out patients
(through :mod:`run_access`), so the summary needs nothing but the run folder.

A run with several training seeds also gets each seed's pooled AUC and the *seed ensemble*'s:
every held-out image scored by the mean logit of its fold's models over the seeds. On a few
hundred images one seed's AUC moves by about 0.05 between seeds (measured on mias-dev), so the
spread over seeds belongs beside any single figure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import numpy as np
from torch.utils.data import DataLoader

from arfl_studio.evaluation.roc_stats import pooled_oof_auc
from arfl_studio.experiments import run_access
from arfl_studio.experiments.fold_predictions import read_predictions
from arfl_studio.experiments.run_folder import fold_dir, seed_folders
from arfl_studio.training.threshold import score_images


def out_of_fold_scores(run_dir: str | Path, method: str, seed: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(labels, clean logits) of each finished fold's held-out images, scored by that fold's model."""
    folds = []
    for fold in run_access.run_folds(run_dir, method, seed if seed is not None else run_access.default_seed(run_dir)):
        model, _spec, _records, dataset = run_access.held_out(run_dir, method, fold, seed)
        scored = score_images(model, DataLoader(dataset, batch_size=16))
        assert scored is not None  # None only when stopped, and nothing stops this
        folds.append(scored)
    return folds


def _manifest(run_dir: Path, method: str, fold: int, seed: int | None) -> dict:
    return json.loads((fold_dir(run_dir, method, fold, seed) / "manifest.json").read_text(encoding="utf-8"))


def seed_ensemble(run_dir: str | Path, method: str) -> dict | None:
    """Each seed's pooled out-of-fold AUC and the seed ensemble's (mean logit over seeds per image),
    from the folds' ``predictions.json``, over the folds every seed finished; None with one seed."""
    run_dir = Path(run_dir)
    seeds = [folder for _seed, folder in seed_folders(run_access.run_config(run_dir))]
    if len(seeds) < 2:
        return None
    folds = sorted(set.intersection(*(set(run_access.run_folds(run_dir, method, s)) for s in seeds)))
    stored = {s: {k: read_predictions(fold_dir(run_dir, method, k, s)) for k in folds} for s in seeds}
    folds = [k for k in folds if all(stored[s][k] is not None for s in seeds)]
    if not folds:
        return None
    predictions = {s: {k: cast(dict, stored[s][k]) for k in folds} for s in seeds}
    per_seed, ensemble = {}, []
    for s in seeds:
        per_seed[str(s)] = pooled_oof_auc([(predictions[s][k]["label"], predictions[s][k]["clean_logit"]) for k in folds]).to_dict()
    for k in folds:
        first = predictions[seeds[0]][k]
        if not all(np.array_equal(predictions[s][k]["index"], first["index"]) for s in seeds):
            raise ValueError(f"{method} fold {k}: the seeds scored different images")
        ensemble.append((first["label"], np.mean([predictions[s][k]["clean_logit"] for s in seeds], axis=0)))
    aucs = [v["auc"] for v in per_seed.values()]
    return {
        "seeds": seeds,
        "folds": folds,
        "per_seed": per_seed,
        "per_seed_mean": float(np.mean(aucs)),
        "per_seed_sd": float(np.std(aucs, ddof=1)),
        "ensemble": pooled_oof_auc(ensemble).to_dict(),
    }


def summarise_run(run_dir: str | Path) -> dict:
    """{method: {fold_auc, fold_auc_mean, fold_auc_sd, pooled (AUC, interval, n), seconds_per_fold, seeds, ...}}.

    The fold figures are the run's first seed's; ``seeds`` (several-seed runs) holds every seed's
    pooled AUC and the seed ensemble's."""
    run_dir = Path(run_dir)
    seed = run_access.default_seed(run_dir)
    summary = {}
    for method in run_access.run_methods(run_dir):
        folds = run_access.run_folds(run_dir, method, seed)
        manifests = [_manifest(run_dir, method, k, seed) for k in folds]
        fold_auc = [m["results"]["standard_auc"] for m in manifests]
        pooled = pooled_oof_auc(out_of_fold_scores(run_dir, method, seed))
        summary[method] = {
            "folds": len(folds),
            "fold_auc": fold_auc,
            "fold_auc_mean": float(np.mean(fold_auc)),
            "fold_auc_sd": float(np.std(fold_auc, ddof=1)) if len(fold_auc) > 1 else None,
            "fold_adversarial_auc_mean": float(np.nanmean([m["results"].get("adversarial_auc", np.nan) for m in manifests])),
            "pooled": pooled.to_dict(),
            "seconds_per_fold": float(np.mean([m.get("seconds", np.nan) for m in manifests])),
            "selected_epochs": [m.get("selected_epoch") for m in manifests],
            "seeds": seed_ensemble(run_dir, method),
        }
    return summary
