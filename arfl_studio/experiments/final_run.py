"""A method's final model: trained on every patient of the run, after its CV folds (``run CONFIG --final``).

Cross-validation estimates how well the procedure does; the final model is what it makes
from all the data, for external validation (``arfl-studio evaluate``) and for use. It goes
through the same steps as a fold (:mod:`fold_run`: prepare, build, train, choose the
threshold, write) with an empty test set: the training patients are every patient of the
run, the ``[training] threshold_holdout`` share of them is held out for the decision
threshold and (``select_epoch = "validation-auc"``) the epoch, exactly as in a fold. There
is no held-out test fold, so the manifest has no AUC. Stored at OUT/KEY/final (or
OUT/KEY/seed_S/final); resumable like a fold.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.fold_run import (
    build_fold_model,
    choose_threshold,
    fold_batches,
    prepare_fold,
    train_fold,
    write_fold,
)
from arfl_studio.experiments.run_loader import RunLoader
from arfl_studio.experiments.run_folder import fold_dir, now, read_json
from arfl_studio.experiments.splits import Splits
from arfl_studio.training import distributed as ddp

TRAINED_ON = "every patient of the run (no held-out test fold)"


@dataclass(frozen=True)
class FinalFinished:
    """A method's final model is written; ``threshold`` is its DecisionThreshold as a dict."""

    method_key: str
    threshold: dict
    seed: int | None = None


class AllPatients(Splits):
    """The run's records with no test fold: every patient trains (or chooses the threshold)."""

    def train_test(self, fold: int | None) -> tuple[list, list]:
        return list(self.records), []


def run_final(
    *,
    out: Path,
    config: ExperimentConfig,
    splits: Splits,
    run: dict,
    device: torch.device,
    ctx: ddp.DistributedContext,
    emit: Callable[[Any], None],
    cancel: threading.Event,
    fingerprint: str,
    train_seed: int,
    run_loader: RunLoader,
    seed_folder: int | None = None,
    restart_damaged: bool = False,
) -> dict | None:
    """Train (or resume, or keep) the final model of one method; its manifest, or None when cancelled."""
    folder = fold_dir(out, run["key"], None, seed_folder)
    previous = read_json(folder / "manifest.json")
    if previous and previous.get("status") == "finished" and previous.get("method") == run["method"].to_dict():
        return previous
    plan = prepare_fold(
        config=config,
        splits=AllPatients(splits.records, splits.folds),
        run=run,
        fold=None,
        device=device,
        ctx=ctx,
        emit=emit,
        fingerprint=fingerprint,
        train_seed=train_seed,
        seed_folder=seed_folder,
        folder=folder,
        previous=previous,
        restart_damaged=restart_damaged,
    )
    plan.manifest.update(final=True, trained_on=TRAINED_ON)
    model, optimizer, start_epoch = build_fold_model(plan)
    batches = fold_batches(plan, run_loader)
    started = time.perf_counter()
    trained = train_fold(plan, model, optimizer, start_epoch, batches, cancel)
    if trained is None:
        return None
    threshold = None
    stopped = False
    if ctx.is_main:
        threshold = choose_threshold(plan, trained, batches, cancel)  # polls cancel per batch; None when stopped
        stopped = threshold is None or cancel.is_set()
        if stopped:  # as a fold: resume.pt holds the last epoch, a resumed final goes straight to the threshold
            plan.manifest.update(status="cancelled", message="cancelled; re-run the same command to resume", ended=now())
            plan.write_manifest()
        else:
            assert threshold is not None
            write_fold(plan, trained, threshold, {"threshold": threshold.to_dict(), "trained_on": TRAINED_ON}, started)
    ddp.barrier(ctx)
    if stopped:
        return None
    if ctx.is_main and threshold is not None:
        emit(FinalFinished(plan.key, threshold.to_dict(), seed_folder))
    return plan.manifest
