"""One fold of one method (or sweep point), step by step as the paper's procedure runs it:

1. :func:`prepare_fold`: the fold's training, threshold and test records, the training
   fold's class balance (``pos_weight``), and its manifest;
2. :func:`build_fold_model`: the seeded initial model and optimizer, or the state saved in
   ``resume.pt`` after the last finished epoch;
3. :func:`train_fold`: the trainer, validating on the held-out fold and checkpointing for
   resume every few epochs (its failures: :mod:`fold_failures`);
4. :func:`choose_threshold`: the decision threshold, on the training folds' held-out patients;
5. :func:`evaluate_held_out`: standard and adversarial AUC on the held-out fold;
6. :func:`write_fold`: ``model.pt`` and the finished manifest; then :class:`FoldFinished`.

Every epoch re-seeds the global RNG from (seed, fold, epoch, rank) and the validation
attack uses its own generator, so a resumed CPU run gives the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DistributedSampler

from arfl_studio import atomic
from arfl_studio.atomic import NoSpaceError
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.fold_evaluation import evaluate_auc, score_logits, unit_summary
from arfl_studio.experiments.fold_failures import training_failures
from arfl_studio.experiments.fold_optimizer import epoch_lr, keep_layers_in_eval, make_optimizer
from arfl_studio.experiments.fold_patches import pretrain_on_patches
from arfl_studio.experiments.fold_plan import FoldFinished, FoldPlan, derive_seed
from arfl_studio.experiments.epoch_selection import EpochSelection
from arfl_studio.experiments.fold_resume import is_damaged, keep_metrics_through, restore, save_resume
from arfl_studio.experiments.fold_predictions import evaluated_indices, write_predictions
from arfl_studio.experiments.run_folder import ExperimentError, describe_device, fold_dir, now, read_json, versions
from arfl_studio.experiments.run_loader import FoldBatches, LoaderPass, RunLoader, in_order
from arfl_studio.experiments.sources import DataSource, model_input_record
from arfl_studio.experiments.splits import Splits
from arfl_studio.models.dual_bn import has_dual_bn
from arfl_studio.models.image import PretrainedWeightsMissing
from arfl_studio.models.registry import DecisionThreshold, build_model, save_checkpoint
from arfl_studio.training import distributed as ddp
from arfl_studio.training.events import EpochEvent
from arfl_studio.training.losses import fold_pos_weight
from arfl_studio.training.augment import augmentation
from arfl_studio.training.objective import compute_loss
from arfl_studio.training.threshold import HOLDOUT, HOLDOUT_TOO_SMALL, TRAINING_IMAGES, fit_threshold, threshold_split
from arfl_studio.training.trainer import train

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
def run_fold(
    *,
    out: Path,
    config: ExperimentConfig,
    source: DataSource,
    splits: Splits,
    run: dict,
    fold: int,
    device: torch.device,
    ctx: ddp.DistributedContext,
    emit: Callable[[Any], None],
    cancel: threading.Event,
    fingerprint: str,
    train_seed: int,
    seed_folder: int | None = None,
    restart_damaged: bool = False,
    run_loader: RunLoader | None = None,
) -> dict | None:
    """Train and evaluate one fold; returns the fold manifest, or None when cancelled.

    ``restart_damaged``: a damaged ``resume.pt`` (e.g. truncated) is removed and the fold
    starts over, instead of stopping with a message naming it.
    """
    folder = fold_dir(out, run["key"], fold, seed_folder)
    previous = read_json(folder / "manifest.json")
    if previous and previous.get("status") == "finished" and previous.get("method") == run["method"].to_dict():
        return previous

    plan = prepare_fold(
        config=config,
        splits=splits,
        run=run,
        fold=fold,
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
    model, optimizer, start_epoch = build_fold_model(plan)
    batches = fold_batches(plan, run_loader or RunLoader(source, splits.records, config.training.workers, device))
    started = time.perf_counter()
    trained = train_fold(plan, model, optimizer, start_epoch, batches, cancel)
    if trained is None:
        return None
    results: dict[str, Any] = {}
    stopped = False
    if ctx.is_main:
        threshold = choose_threshold(plan, trained, batches, cancel)
        results = evaluate_held_out(plan, trained, batches, threshold, cancel) if threshold is not None else {}
        stopped = cancel.is_set()  # polled per batch by the scoring and the attacks
        if stopped:  # resume.pt holds the last epoch: a resumed fold goes straight to the threshold
            plan.manifest.update(status="cancelled", message="cancelled; re-run the same command to resume", ended=now())
            plan.write_manifest()
        else:
            write_fold(plan, trained, threshold, results, started)
    ddp.barrier(ctx)
    if stopped:
        return None
    if ctx.is_main:
        emit(FoldFinished(plan.key, fold, results["standard_auc"], results["adversarial_auc"], seed_folder))
    return plan.manifest


# -- 1. the fold's data --------------------------------------------------------------------------
def prepare_fold(
    *,
    config: ExperimentConfig,
    splits: Splits,
    run: dict,
    fold: int | None,
    device: torch.device,
    ctx: ddp.DistributedContext,
    emit: Callable[[Any], None],
    fingerprint: str,
    train_seed: int,
    seed_folder: int | None,
    folder: Path,
    previous: dict | None,
    restart_damaged: bool,
) -> FoldPlan:
    """The fold's records (training, threshold hold-out, test), class balance and starting manifest."""
    t = config.training
    train_records, test_records = splits.train_test(fold)
    train_records, threshold_records = threshold_split(train_records, t.threshold_holdout, derive_seed(config.cv.seed, "threshold", fold))
    positives = sum(int(r.label) == 1 for r in train_records)  # class imbalance of the training fold
    method = run["method"]
    plan = FoldPlan(
        key=run["key"],
        fold=fold,
        seed_folder=seed_folder,
        method=method,
        spec=config.model_spec_for(method),
        seed=derive_seed(train_seed, "fold", fold),  # every method of a fold starts from the same weights
        config=config,
        device=device,
        ctx=ctx,
        emit=emit,
        folder=folder,
        train_records=train_records,
        threshold_records=threshold_records,
        test_records=test_records,
        pos_weight=fold_pos_weight(t.pos_weight, positives, len(train_records) - positives),
        previous=previous,
        restart_damaged=restart_damaged,
    )
    plan.manifest = _starting_manifest(plan, run, splits, train_seed, fingerprint)
    return plan


def _starting_manifest(plan: FoldPlan, run: dict, splits: Splits, train_seed: int, fingerprint: str) -> dict:
    held_out = {id(r) for r in plan.threshold_records}
    return {
        "method_key": plan.key,
        "method": plan.method.to_dict(),
        "point": run.get("point"),
        "params": run.get("params", {}),
        "fold": plan.fold,
        "status": "running",
        "seed": plan.seed,
        "training_seed": train_seed,
        "device": describe_device(plan.device),
        "world_size": plan.ctx.world_size,
        "versions": versions(),
        "data_fingerprint": fingerprint,
        "model": plan.spec.to_dict(),
        "train_images": len(plan.train_records),
        "threshold_images": len(plan.threshold_records),
        # positions in splits.json's records (as its test_indices): no patient IDs in the manifest
        "threshold_indices": [i for i, r in enumerate(splits.records) if id(r) in held_out],
        "test_images": len(plan.test_records),
        "started": (plan.previous or {}).get("started", now()),
        "epochs": plan.config.training.epochs,
        "epochs_completed": 0,
        "pos_weight": plan.pos_weight,
    }


def fold_batches(plan: FoldPlan, run_loader: RunLoader) -> FoldBatches:
    """The fold's records in the run's loader; an image that stops decoding is noted in the manifest."""
    run_loader.skipped = plan.skipped
    train_indices, test_indices = run_loader.indices(plan.train_records), run_loader.indices(plan.test_records)
    return FoldBatches(
        loader=run_loader,
        train=train_indices,
        threshold=run_loader.indices(plan.threshold_records) or train_indices,
        test=run_loader.passes(in_order(test_indices, plan.config.training.eval_batch_size)),
    )


# -- 2. the model --------------------------------------------------------------------------------
def _initial_model(plan: FoldPlan) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The fold's starting weights (seeded: the same for every method and every attempt) and optimizer."""
    t = plan.config.training
    torch.manual_seed(plan.seed)
    model = build_model(plan.spec).to(plan.device)
    keep_layers_in_eval(model, t.freeze_batchnorm, t.dropout)
    return model, make_optimizer(model, plan.config)


def build_fold_model(plan: FoldPlan) -> tuple[nn.Module, torch.optim.Optimizer, int]:
    """The model and optimizer to train and the epoch to start at: fresh, or as ``resume.pt`` left them.

    A damaged ``resume.pt`` stops the fold with a message naming it, or (``restart_damaged``)
    is removed and the fold starts over from the same initial weights.
    """
    try:
        model, optimizer = _initial_model(plan)
    except PretrainedWeightsMissing as exc:
        plan.manifest.update(status="failed", message=str(exc), ended=now())
        plan.write_manifest()
        raise ExperimentError(str(exc)) from exc
    start_epoch = 0
    if plan.resume_path.exists() or atomic.previous_path(plan.resume_path).exists():
        try:
            start_epoch, selection, note = restore(
                plan.resume_path, model, optimizer, plan.device, plan.method.to_dict(), plan.key, plan.fold
            )
            plan.selection = EpochSelection.from_state(selection)
            if note:
                plan.manifest["resume_note"] = note
        except ExperimentError as exc:
            if not (plan.restart_damaged and is_damaged(exc)):
                plan.fail(str(exc))
                raise
            log.warning("%s; starting fold %s of %s over", exc, plan.fold, plan.key)
            atomic.remove_checkpoint(plan.resume_path)
            model, optimizer = _initial_model(plan)
    if plan.ctx.is_main:
        keep_metrics_through(plan.metrics_path, start_epoch)
    plan.manifest["epochs_completed"] = start_epoch
    plan.manifest["resumed_from_epoch"] = start_epoch or None
    plan.write_manifest()
    return model, optimizer, start_epoch


# -- 3. training ---------------------------------------------------------------------------------
def train_fold(
    plan: FoldPlan, model: nn.Module, optimizer: torch.optim.Optimizer, start_epoch: int, batches: FoldBatches, cancel: threading.Event
) -> nn.Module | None:
    """Train from ``start_epoch`` to the last epoch (a fresh fold with a ``[patch_stage]`` first learns
    lesion patches); returns the trained model, or None when cancelled.

    Every epoch is logged to ``metrics.jsonl`` and the manifest, every ``checkpoint_every``
    epochs saved to ``resume.pt``; a failure is recorded by :func:`training_failures`.
    """
    if plan.config.patch_stage.epochs and start_epoch == 0:  # a fresh fold learns lesion patches first
        pretrain_on_patches(plan, model, batches.loader.source, batches, cancel)
    t = plan.config.training
    train_model = ddp.wrap(model, plan.ctx, plan.device, t.sync_batchnorm)
    status = "finished"
    if start_epoch < t.epochs:
        with training_failures(plan):
            result = train(
                train_model,
                optimizer,
                _epoch_batches(plan, optimizer, batches),
                plan.method,
                t.epochs,
                start_epoch=start_epoch,
                device=plan.device,
                callback=plan.report,
                cancel=cancel,
                evaluate=_validation(plan, model, batches, cancel),
                on_epoch_end=_epoch_end(plan, model, optimizer),
                amp=t.amp,
                objective=lambda m, x, y: compute_loss(m, x, y, plan.method, plan.pos_weight),
            )
        status = result.status
    if status == "cancelled":
        plan.manifest.update(status="cancelled", message="cancelled; re-run the same command to resume", ended=now())
        plan.write_manifest()
        return None
    if t.select_epoch == "validation-auc" and plan.selection.restore_best(model):
        plan.manifest.update(
            selected_epoch=plan.selection.epoch,
            selection_auc=plan.selection.auc,
            selected_on="threshold_holdout patients (inner validation)",
        )
    return model


def _epoch_batches(plan: FoldPlan, optimizer: torch.optim.Optimizer, batches: FoldBatches) -> Callable[[int], LoaderPass]:
    """``batches(epoch)`` for the trainer: this rank's shuffled share of the training images.

    The order, the RNG and the learning rate are set from the epoch alone, so a resumed
    fold continues the same schedule.
    """
    t, ctx = plan.config.training, plan.ctx
    per_rank = max(1, t.batch_size // ctx.world_size)
    shard = -(-len(batches.train) // ctx.world_size)
    drop_last = shard % per_rank == 1  # a batch of one breaks batch norm
    sampler = DistributedSampler(
        batches.train, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=derive_seed(plan.seed, "order")
    )
    augment = augmentation(t.augment)

    def epoch_batches(epoch: int) -> LoaderPass:
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(t.lr, t.lr_schedule, epoch, t.epochs)
        torch.manual_seed(derive_seed(plan.seed, "epoch", epoch, ctx.rank))
        sampler.set_epoch(epoch)
        order = in_order([batches.train[i] for i in sampler], per_rank)
        if drop_last and order and len(order[-1]) < per_rank:
            order.pop()
        return batches.loader.passes(order, augment)

    return epoch_batches


def _validation(
    plan: FoldPlan, model: nn.Module, batches: FoldBatches, cancel: threading.Event | None = None
) -> Callable[[int], dict[str, float]]:
    """``evaluate(epoch)`` for the trainer: AUC on the held-out fold every ``validate_every`` epochs
    (adversarial every ``validate_adversarial_every``) and after the last, on the main rank."""
    t, ev = plan.config.training, plan.config.evaluation
    inner = batches.loader.passes(in_order(batches.threshold, t.eval_batch_size))

    def validate(epoch: int) -> dict[str, float]:
        last = epoch + 1 == t.epochs
        if not plan.ctx.is_main:
            return {}
        selection = {}
        if t.select_epoch == "validation-auc":  # every epoch, on the held-out training patients
            inner_result = evaluate_auc(model, inner, plan.device, ev, adversarial=False, cancel=cancel)
            if not inner_result:  # stopped
                return {}
            auc = inner_result["standard_auc"]
            plan.selection.consider(epoch + 1, auc, model)
            selection = {"inner_validation_auc": auc}
        if t.validate_every == 0:
            return selection
        if not last and (epoch + 1) % t.validate_every:
            return selection
        adversarial = t.validate_adversarial_every > 0 and (last or (epoch + 1) % t.validate_adversarial_every == 0)
        results = evaluate_auc(
            model,
            batches.test,
            plan.device,
            ev,
            adversarial=adversarial,
            cancel=cancel,
            steps=t.validation_attack_steps,
            seed=derive_seed(ev.seed, "val", plan.fold),
        )
        return {**selection, **results} if results else {}

    return validate


def _epoch_end(plan: FoldPlan, model: nn.Module, optimizer: torch.optim.Optimizer) -> Callable[[EpochEvent], None]:
    """``on_epoch_end`` for the trainer: log the epoch, checkpoint for resume, update the manifest."""
    t = plan.config.training

    def record(event: EpochEvent) -> None:
        epoch = event.epoch + 1
        plan.manifest["epochs_completed"] = epoch
        losses = ddp.all_reduce_mean(event.losses, plan.ctx)  # the global batch's losses under DDP
        if not plan.ctx.is_main:
            return
        atomic.append_jsonl(
            plan.metrics_path,
            {
                "epoch": epoch,
                "losses": losses,
                "lr": optimizer.param_groups[0]["lr"],
                **{k: (None if v != v else v) for k, v in event.metrics.items()},
                "seconds": round(event.seconds, 4),
            },
        )
        if epoch % max(t.checkpoint_every, 1) == 0 or epoch == t.epochs:
            selected = plan.selection.to_state() if t.select_epoch != "last" else None
            save_resume(plan.resume_path, model, optimizer, plan.method.to_dict(), epoch, selected)
        plan.write_manifest()

    return record


# -- 4. the decision threshold -------------------------------------------------------------------
def choose_threshold(
    plan: FoldPlan, model: nn.Module, batches: FoldBatches, cancel: threading.Event | None = None
) -> DecisionThreshold | None:
    """The decision threshold is part of the model: chosen on the training folds' held-out
    patients (or, without them, on the images it trained on). None when stopped."""
    t = plan.config.training
    scoring = batches.loader.passes(in_order(batches.threshold, t.eval_batch_size))
    held_out = bool(plan.threshold_records)
    return fit_threshold(
        model,
        scoring,
        t.threshold,
        plan.device,
        chosen_on=HOLDOUT if held_out else TRAINING_IMAGES,
        note=HOLDOUT_TOO_SMALL if t.threshold_holdout and not held_out else "",
        cancel=cancel,
    )


# -- 5. evaluation on the held-out fold ----------------------------------------------------------
def evaluate_held_out(
    plan: FoldPlan, model: nn.Module, batches: FoldBatches, threshold: DecisionThreshold, cancel: threading.Event | None = None
) -> dict[str, Any]:
    """Standard and adversarial AUC (and rates at ``threshold``) under the ``[evaluation]`` attack, per
    ``[evaluation] unit``; for DSBN also the adversarial-BN route, labelled as the oracle it is.
    ``{}`` when stopped."""
    ev = plan.config.evaluation
    seed = derive_seed(ev.seed, "test", plan.fold)
    scores = score_logits(model, batches.test, plan.device, ev, seed=seed, cancel=cancel)
    if scores is None:
        return {}
    results: dict[str, Any] = unit_summary(plan.test_records, *scores, unit=ev.unit, threshold=threshold.logit)
    _keep_predictions(plan, batches, scores)
    results["threshold"] = threshold.to_dict()
    results["evaluation"] = {
        "kind": ev.kind,
        "eps": ev.eps,
        "steps": ev.steps,
        "restarts": ev.restarts,
        "bn_route": "clean" if has_dual_bn(model) else None,
        "unit": results["unit"],
    }
    if has_dual_bn(model) and ev.dsbn_oracle:
        oracle = score_logits(model, batches.test, plan.device, ev, seed=seed, route="adversarial", cancel=cancel)
        if oracle is None:
            return {}
        results["oracle_adversarial_auc"] = unit_summary(plan.test_records, *oracle, unit=ev.unit)["adversarial_auc"]
        results["oracle_note"] = (
            "DSBN adversarial-BN route, attacked and scored through the adversarial BN: "
            "an oracle that knows which inputs are adversarial; not a deployable figure"
        )
    return results


def _keep_predictions(plan: FoldPlan, batches: FoldBatches, scores: tuple) -> None:
    """Per-image out-of-fold scores (positions in splits.json) for the pooled AUC and paired DeLong tests."""
    targets, clean, adversarial = scores
    test_indices = [i for batch in batches.test.batches for i in batch]
    skipped = [s["path"] for s in plan.manifest.get("skipped_images", [])]
    evaluated = evaluated_indices(batches.loader.records, test_indices, skipped)
    if write_predictions(plan.folder, plan.fold, evaluated, targets, clean, adversarial) is None:
        log.warning("%s fold %s: predictions.json not written (evaluated images do not match the fold)", plan.key, plan.fold)


# -- 6. the fold's files -------------------------------------------------------------------------
def write_fold(plan: FoldPlan, model: nn.Module, threshold: DecisionThreshold, results: dict[str, Any], started: float) -> None:
    """``model.pt`` (with its threshold) and the finished manifest; ``resume.pt`` goes unless kept."""
    try:
        save_checkpoint(plan.folder / "model.pt", model, plan.spec, threshold, model_input_record(plan.config))
    except NoSpaceError as exc:
        plan.fail(str(exc))
        raise ExperimentError(f"{plan.key} fold {plan.fold}: {exc}") from exc
    plan.manifest.update(
        status="finished",
        results=results,
        ended=now(),
        seconds=round(time.perf_counter() - started, 3) + (plan.previous or {}).get("seconds", 0.0),
    )
    plan.write_manifest()
    if not plan.config.training.keep_resume:
        atomic.remove_checkpoint(plan.resume_path)
