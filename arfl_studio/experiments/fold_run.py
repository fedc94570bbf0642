"""One fold of one method (or sweep point): build the model, train it with the engine (validating
every epoch on the held-out fold), checkpoint for resume, then evaluate the held-out fold.

Every epoch re-seeds the global RNG from (seed, fold, epoch, rank) and the validation
attack uses its own generator, so a resumed CPU run gives the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from arfl_studio import atomic
from arfl_studio.atomic import NoSpaceError
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.fold_evaluation import evaluate_auc
from arfl_studio.experiments.fold_predictions import evaluated_indices, write_predictions
from arfl_studio.experiments.run_folder import ExperimentError, describe_device, fold_dir, now, read_json, versions
from arfl_studio.experiments.sources import (
    BatchPlan,
    DataSource,
    ReadableBatches,
    SkipUnreadable,
    Unreadable,
    collate_readable,
)
from arfl_studio.experiments.splits import Splits
from arfl_studio.models.dual_bn import has_dual_bn
from arfl_studio.models.image import PretrainedWeightsMissing
from arfl_studio.models.registry import ModelSpec, build_model, save_checkpoint
from arfl_studio.training import distributed as ddp
from arfl_studio.training.events import EpochEvent, StatusEvent
from arfl_studio.training.losses import fold_pos_weight
from arfl_studio.training.methods import MethodSettings, SettingError
from arfl_studio.training.objective import compute_loss
from arfl_studio.training.threshold import HOLDOUT, HOLDOUT_TOO_SMALL, TRAINING_IMAGES, fit_threshold, threshold_split
from arfl_studio.training.trainer import NonFiniteLossError, train

log = logging.getLogger(__name__)

RESUME_FORMAT = 1
INTERRUPTED = "interrupted (Ctrl-C); re-run the same command to resume"


@dataclass(frozen=True)
class FoldEvent:
    """An engine event (StepEvent / EpochEvent / StatusEvent) of one method's fold."""

    method_key: str
    fold: int
    event: Any
    seed: int | None = None  # set when [training] seeds lists several


@dataclass(frozen=True)
class FoldFinished:
    method_key: str
    fold: int
    standard_auc: float
    adversarial_auc: float
    seed: int | None = None


def derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def keep_layers_in_eval(model: nn.Module, batchnorm: bool, dropout: bool) -> None:
    """Frozen batch norm (running statistics, not updated) and/or no dropout while training."""
    kinds: list[type] = []
    if batchnorm:
        kinds.append(nn.modules.batchnorm._BatchNorm)
    if not dropout:
        kinds.append(nn.modules.dropout._DropoutNd)
    if not kinds:
        return
    modules = [m for m in model.modules() if isinstance(m, tuple(kinds))]

    def hook(_module, _args):
        for module in modules:
            module.training = False

    model.register_forward_pre_hook(hook)


def make_optimizer(model: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SettingError("the model has no trainable parameters (check [model] fine_tune)")
    t = config.training
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def epoch_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of (0-based) ``epoch``: constant, or cosine-annealed towards 0 over ``epochs``."""
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    return lr


class RunLoader:
    """One DataLoader for a whole run: every fold's training, validation and scoring batches.

    Spawned worker processes start once per run, not per loader, fold or epoch (a fresh
    interpreter importing torch per worker per epoch made ``workers = 2`` 30x slower than 0;
    three persistent loaders per fold were still 27x slower on a short run). Each pass sets
    the list of batches (indices into the run's records) it wants, then iterates.
    """

    def __init__(self, source: DataSource, records: list, workers: int, device: torch.device):
        self.position = {id(record): i for i, record in enumerate(records)}
        self.plan = BatchPlan()
        self.skipped: Callable[[Unreadable], None] = lambda item: None
        kwargs: dict[str, Any] = {}
        if workers > 0:  # spawn: safe beside a Qt GUI and on macOS/Windows
            kwargs.update(num_workers=workers, multiprocessing_context="spawn", persistent_workers=True)
        self.loader = DataLoader(SkipUnreadable(source.dataset(records), records), batch_sampler=self.plan,
                                 collate_fn=collate_readable, pin_memory=device.type == "cuda", **kwargs)

    def indices(self, records: list) -> list[int]:
        return [self.position[id(record)] for record in records]

    def passes(self, batches: list[list[int]]) -> "LoaderPass":
        return LoaderPass(self, batches)


class LoaderPass:
    """One pass over given batches of the run's loader, yielding (x, t); unreadable images are reported."""

    def __init__(self, run_loader: RunLoader, batches: list[list[int]]):
        self.run_loader, self.batches = run_loader, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.run_loader.plan.batches = self.batches
        yield from ReadableBatches(self.run_loader.loader, self.run_loader.skipped)


def in_order(indices: list[int], batch_size: int) -> list[list[int]]:
    return [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]


def _damaged_resume(path: Path, key: str, fold: int, reason: str) -> ExperimentError:
    return ExperimentError(
        f"{path} is damaged ({reason}); start fold {fold} of {key} over with --restart-damaged "
        f"(or delete that file), then re-run the same command")


def _load_resume(path: Path, device: torch.device, method_dict: dict, key: str, fold: int) -> dict:
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a checkpoint, or code in the pickle
        raise _damaged_resume(path, key, fold, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
    if not isinstance(state, dict) or not {"format", "method", "epoch", "model", "optimizer"} <= set(state):
        raise _damaged_resume(path, key, fold, "not a resume checkpoint of this program")
    if state.get("format") != RESUME_FORMAT or state.get("method") != json.dumps(method_dict, sort_keys=True):
        raise ExperimentError(f"{path} belongs to a different method or version; delete it to restart the fold")
    return state


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
    method: MethodSettings = run["method"]
    key = run["key"]
    folder = fold_dir(out, key, fold, seed_folder)
    manifest_path = folder / "manifest.json"
    previous = read_json(manifest_path)
    method_dict = method.to_dict()
    if previous and previous.get("status") == "finished" and previous.get("method") == method_dict:
        return previous

    t = config.training
    spec: ModelSpec = config.model_spec_for(method)
    seed = derive_seed(train_seed, "fold", fold)  # every method of a fold starts from the same weights
    train_records, test_records = splits.train_test(fold)
    train_records, threshold_records = threshold_split(train_records, t.threshold_holdout,
                                                       derive_seed(config.cv.seed, "threshold", fold))
    held_out = {id(r) for r in threshold_records}
    manifest: dict[str, Any] = {
        "method_key": key,
        "method": method_dict,
        "point": run.get("point"),
        "params": run.get("params", {}),
        "fold": fold,
        "status": "running",
        "seed": seed,
        "training_seed": train_seed,
        "device": describe_device(device),
        "world_size": ctx.world_size,
        "versions": versions(),
        "data_fingerprint": fingerprint,
        "model": spec.to_dict(),
        "train_images": len(train_records),
        "threshold_images": len(threshold_records),
        # positions in splits.json's records (as its test_indices): no patient IDs in the manifest
        "threshold_indices": [i for i, r in enumerate(splits.records) if id(r) in held_out],
        "test_images": len(test_records),
        "started": (previous or {}).get("started", now()),
        "epochs": t.epochs,
        "epochs_completed": 0,
    }
    positives = sum(int(r.label) == 1 for r in train_records)  # class imbalance of the training fold
    pos_weight = fold_pos_weight(t.pos_weight, positives, len(train_records) - positives)
    manifest["pos_weight"] = pos_weight

    def write_manifest() -> None:
        if ctx.is_main:
            atomic.write_json(manifest_path, manifest)

    def fail(message: str, **extra) -> None:
        """Record the failure; a full disk may refuse even that, which must not hide the cause."""
        manifest.update(status="failed", message=message, ended=now(), **extra)
        try:
            write_manifest()
        except OSError as exc:
            log.warning("could not write %s: %s", manifest_path, exc)
        emit(FoldEvent(key, fold, StatusEvent("failed", message), seed_folder))

    def skipped(item: Unreadable) -> None:
        """An image that stopped decoding mid-fold is left out of its batch, with the reason."""
        seen = manifest.setdefault("skipped_images", [])
        if not any(entry["path"] == item.path for entry in seen):
            seen.append({"path": item.path, "reason": item.reason})
            log.warning("%s fold %d: skipped %s: %s", key, fold, item.path, item.reason)

    torch.manual_seed(seed)
    try:
        model = build_model(spec)
    except PretrainedWeightsMissing as exc:
        manifest.update(status="failed", message=str(exc), ended=now())
        write_manifest()
        raise ExperimentError(str(exc)) from exc
    model.to(device)
    keep_layers_in_eval(model, t.freeze_batchnorm, t.dropout)
    optimizer = make_optimizer(model, config)

    resume_path = folder / "resume.pt"
    metrics_path = folder / "metrics.jsonl"
    start_epoch = 0
    if resume_path.exists():
        try:
            state = _load_resume(resume_path, device, method_dict, key, fold)
            try:
                model.load_state_dict(state["model"])
                optimizer.load_state_dict(state["optimizer"])
                start_epoch = int(state["epoch"])
            except (RuntimeError, ValueError, KeyError, TypeError) as exc:
                raise _damaged_resume(resume_path, key, fold, f"does not fit the model: {str(exc)[:120]}") from exc
            log.info("%s fold %d: resuming after epoch %d", key, fold, start_epoch)
        except ExperimentError as exc:
            if not (restart_damaged and "is damaged" in str(exc)):
                fail(str(exc))
                raise
            log.warning("%s; starting fold %d of %s over", exc, fold, key)
            resume_path.unlink(missing_ok=True)
            torch.manual_seed(seed)  # the same initial weights as an uninterrupted run
            model = build_model(spec).to(device)
            keep_layers_in_eval(model, t.freeze_batchnorm, t.dropout)
            optimizer = make_optimizer(model, config)
            start_epoch = 0
    if ctx.is_main:
        kept = []
        if start_epoch and metrics_path.exists():
            for line in metrics_path.read_text(encoding="utf-8").splitlines():
                try:
                    epoch = json.loads(line)["epoch"]
                except (ValueError, KeyError, TypeError):  # a damaged line is dropped, as a later epoch is
                    continue
                if isinstance(epoch, int) and epoch <= start_epoch:
                    kept.append(line)
        atomic.write_text(metrics_path, "".join(line + "\n" for line in kept))
    manifest["epochs_completed"] = start_epoch
    manifest["resumed_from_epoch"] = start_epoch or None
    write_manifest()

    train_model = ddp.wrap(model, ctx, device, t.sync_batchnorm)
    run_loader = run_loader or RunLoader(source, splits.records, t.workers, device)
    run_loader.skipped = skipped
    train_indices, test_indices = run_loader.indices(train_records), run_loader.indices(test_records)
    threshold_indices = run_loader.indices(threshold_records) or train_indices
    per_rank = max(1, t.batch_size // ctx.world_size)
    shard = -(-len(train_indices) // ctx.world_size)
    drop_last = shard % per_rank == 1  # a batch of one breaks batch norm
    test_loader = run_loader.passes(in_order(test_indices, t.eval_batch_size))
    sampler = DistributedSampler(train_indices, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=derive_seed(seed, "order"))

    def batches(epoch: int):
        # Set from the epoch alone, so a resumed fold continues the same schedule.
        for group in optimizer.param_groups:
            group["lr"] = epoch_lr(t.lr, t.lr_schedule, epoch, t.epochs)
        torch.manual_seed(derive_seed(seed, "epoch", epoch, ctx.rank))
        sampler.set_epoch(epoch)
        plan = in_order([train_indices[i] for i in sampler], per_rank)
        if drop_last and plan and len(plan[-1]) < per_rank:
            plan.pop()
        return run_loader.passes(plan)

    def evaluate(epoch: int) -> dict[str, float]:
        last = epoch + 1 == t.epochs
        if not ctx.is_main or t.validate_every == 0:
            return {}
        if not last and (epoch + 1) % t.validate_every:
            return {}
        adversarial = t.validate_adversarial_every > 0 and (last or (epoch + 1) % t.validate_adversarial_every == 0)
        return evaluate_auc(model, test_loader, device, config.evaluation, adversarial=adversarial,
                            steps=t.validation_attack_steps, seed=derive_seed(config.evaluation.seed, "val", fold))

    def on_epoch_end(event: EpochEvent) -> None:
        epoch = event.epoch + 1
        manifest["epochs_completed"] = epoch
        losses = ddp.all_reduce_mean(event.losses, ctx)  # the global batch's losses under DDP
        if not ctx.is_main:
            return
        atomic.append_jsonl(metrics_path, {
            "epoch": epoch,
            "losses": losses,
            "lr": optimizer.param_groups[0]["lr"],
            **{k: (None if v != v else v) for k, v in event.metrics.items()},
            "seconds": round(event.seconds, 4),
        })
        if epoch % max(t.checkpoint_every, 1) == 0 or epoch == t.epochs:
            atomic.save_torch(resume_path, {
                "format": RESUME_FORMAT,
                "method": json.dumps(method_dict, sort_keys=True),
                "epoch": epoch,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(),
            })
        write_manifest()

    def forward_event(event: Any) -> None:
        emit(FoldEvent(key, fold, event, seed_folder))

    started = time.perf_counter()
    try:
        if start_epoch < t.epochs:
            result = train(train_model, optimizer, batches, method, t.epochs, start_epoch=start_epoch, device=device,
                           callback=forward_event, cancel=cancel, evaluate=evaluate, on_epoch_end=on_epoch_end,
                           amp=t.amp, objective=lambda m, x, y: compute_loss(m, x, y, method, pos_weight))
            status = result.status
        else:
            status = "finished"
    except NonFiniteLossError as exc:
        manifest.update(status="failed", message=str(exc), failed_epoch=exc.epoch + 1, failed_step=exc.step + 1,
                        ended=now())
        write_manifest()
        emit(FoldEvent(key, fold, StatusEvent("failed", str(exc)), seed_folder))
        raise ExperimentError(f"{key} fold {fold}: {exc}") from exc
    except torch.OutOfMemoryError as exc:
        size = config.preprocess.get("size")
        message = (f"{device} ran out of memory training {key} fold {fold} (batch_size {t.batch_size}, image size "
                   f"{size}): use a smaller [training] batch_size or [preprocess] size, or [model] fine_tune = \"paper\"")
        if device.type == "cuda":
            torch.cuda.empty_cache()
        manifest.update(status="failed", message=message, ended=now())
        write_manifest()
        emit(FoldEvent(key, fold, StatusEvent("failed", message), seed_folder))
        raise ExperimentError(message) from exc
    except KeyboardInterrupt:  # Ctrl-C: resume.pt holds the last finished epoch
        manifest.update(status="cancelled", message=INTERRUPTED, ended=now())
        try:
            write_manifest()
        except OSError:
            pass
        raise
    except NoSpaceError as exc:
        fail(str(exc))
        raise ExperimentError(f"{key} fold {fold}: {exc}") from exc
    if status == "cancelled":
        manifest.update(status="cancelled", message="cancelled; re-run the same command to resume", ended=now())
        write_manifest()
        return None

    results: dict[str, Any] = {}
    if ctx.is_main:
        # The decision threshold is part of the model: chosen on the training folds' held-out
        # patients (or, without them, on the images it trained on).
        scoring = run_loader.passes(in_order(threshold_indices, t.eval_batch_size))
        threshold = fit_threshold(model, scoring, t.threshold, device,
                                  chosen_on=HOLDOUT if threshold_records else TRAINING_IMAGES,
                                  note=HOLDOUT_TOO_SMALL if t.threshold_holdout and not threshold_records else "")
        ev = config.evaluation
        predictions: dict = {}
        results = evaluate_auc(model, test_loader, device, ev, seed=derive_seed(ev.seed, "test", fold),
                               threshold=threshold.logit, predictions=predictions)
        # per-image out-of-fold scores (positions in splits.json) for pooled AUC and paired DeLong tests
        evaluated = evaluated_indices(splits.records, test_indices,
                                      [s["path"] for s in manifest.get("skipped_images", [])])
        if predictions and write_predictions(folder, fold, evaluated, **predictions) is None:
            log.warning("%s fold %d: predictions.json not written (evaluated images do not match the fold)", key, fold)
        results["threshold"] = threshold.to_dict()
        results["evaluation"] = {"kind": ev.kind, "eps": ev.eps, "steps": ev.steps, "restarts": ev.restarts,
                                 "bn_route": "clean" if has_dual_bn(model) else None}
        if has_dual_bn(model) and ev.dsbn_oracle:
            oracle = evaluate_auc(model, test_loader, device, ev, seed=derive_seed(ev.seed, "test", fold),
                                  route="adversarial")
            results["oracle_adversarial_auc"] = oracle["adversarial_auc"]
            results["oracle_note"] = ("DSBN adversarial-BN route, attacked and scored through the adversarial BN: "
                                      "an oracle that knows which inputs are adversarial; not a deployable figure")
        try:
            save_checkpoint(folder / "model.pt", model, spec, threshold)
        except NoSpaceError as exc:
            fail(str(exc))
            raise ExperimentError(f"{key} fold {fold}: {exc}") from exc
        manifest.update(status="finished", results=results, ended=now(),
                        seconds=round(time.perf_counter() - started, 3) + (previous or {}).get("seconds", 0.0))
        write_manifest()
        if not t.keep_resume:
            resume_path.unlink(missing_ok=True)
    ddp.barrier(ctx)
    if ctx.is_main:
        emit(FoldFinished(key, fold, results["standard_auc"], results["adversarial_auc"], seed_folder))
    return manifest
