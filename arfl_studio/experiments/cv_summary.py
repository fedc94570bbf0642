"""A cross-validated run on one page: per method its fold AUCs (mean and sd), the pooled
out-of-fold AUC with its DeLong interval, the seconds each fold took, and how many images each
was computed on. Scores are recomputed from the fold models on their own held-out patients
(through :mod:`run_access`), so the summary needs nothing but the run folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from arfl_studio.evaluation.roc_stats import pooled_oof_auc
from arfl_studio.experiments import run_access
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
    from arfl_studio.experiments.run_folder import fold_dir

    return json.loads((fold_dir(run_dir, method, fold, seed) / "manifest.json").read_text(encoding="utf-8"))


def summarise_run(run_dir: str | Path) -> dict:
    """{method: {fold_auc, fold_auc_mean, fold_auc_sd, pooled (AUC, interval, n), seconds_per_fold, ...}}."""
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
        }
    return summary
