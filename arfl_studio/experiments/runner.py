"""The cross-validated experiment runner behind ``arfl-studio run`` and the GUI's training pane.

For each method (or sweep point) and each patient-level fold: build the model,
train it with the engine, validate every epoch (standard and adversarial AUC on the
held-out fold), then evaluate the held-out fold with the ``[evaluation]`` attack.

Run folder (every file written atomically)::

    OUT/config.toml      the complete config (re-runs the experiment)
    OUT/manifest.json    versions, device, data fingerprint, status, times
    OUT/splits.json      the records and each fold's held-out indices
    OUT/results.json     the merged results (also ``arfl-studio collect OUT``)
    OUT/<key>/fold_<k>/  metrics.jsonl, manifest.json, model.pt + model.json, resume.pt

Re-running the same command resumes: finished folds are kept, an unfinished one
continues from its last checkpoint (``resume.pt``: model, optimizer, epoch). Every
epoch re-seeds the global RNG from (seed, fold, epoch, rank) and the validation
attack uses its own generator, so a resumed CPU run gives the same numbers as an
uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, DistributedSampler

from arfl_studio import __version__, atomic
from arfl_studio.experiments.config import EvaluationConfig, ExperimentConfig, load_config
from arfl_studio.experiments.run_folder import fold_dir, seed_folders
from arfl_studio.experiments.sources import DataSource, open_source, patient_folds, record_from_dict, record_to_dict
from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.models.image import PretrainedWeightsMissing
from arfl_studio.models.registry import ModelSpec, build_model, load_checkpoint, save_checkpoint
from arfl_studio.training import distributed as ddp
from arfl_studio.training.attacks import attack_mode, fgsm_attack, pgd_attack
from arfl_studio.training.devices import resolve_device
from arfl_studio.training.events import EpochEvent, StatusEvent
from arfl_studio.training.methods import MethodSettings, SettingError
from arfl_studio.training.metrics import roc_auc
from arfl_studio.training.trainer import NonFiniteLossError, train

log = logging.getLogger(__name__)

RESUME_FORMAT = 1


class ExperimentError(RuntimeError):
    """A run stopped: the message says why and what to do; the run folder records it."""


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


@dataclass
class ExperimentResult:
    out_dir: Path
    status: str  # "finished" | "cancelled" | "partial" (a --fold/--point subset finished)
    results: dict = field(default_factory=dict)  # the collect() document
    folds_run: list[tuple] = field(default_factory=list)  # (key, fold) or (key, fold, seed)
    message: str = ""


# ----------------------------------------------------------------------------------------------
def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import torchvision

    return {
        "arfl_studio": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def _clean_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with attack_mode(model):
        return model(x).float()


def _attack(model: nn.Module, x: torch.Tensor, t: torch.Tensor, settings: EvaluationConfig, steps: int | None,
            generator: torch.Generator) -> torch.Tensor:
    clamp = tuple(settings.clamp) if settings.clamp is not None else None
    if settings.kind == "fgsm":
        return fgsm_attack(model, x, t, settings.eps, clamp=clamp)
    return pgd_attack(model, x, t, settings.eps, steps=steps or settings.steps, step_size=settings.step_size,
                      random_start=settings.random_start, restarts=settings.restarts, clamp=clamp, generator=generator)


def evaluate_auc(
    model: nn.Module,
    loader: Sequence | DataLoader,
    device: torch.device,
    settings: EvaluationConfig,
    *,
    adversarial: bool = True,
    steps: int | None = None,
    seed: int = 0,
    route: str = "clean",
    cancel: threading.Event | None = None,
) -> dict[str, float]:
    """Standard AUC and (optionally) adversarial AUC under ``settings``' attack, through BN ``route``.

    Attacks run in float32 (eps = 1e-4 is below float16's resolution near 1) with a
    generator of their own, so evaluating never moves the training RNG.
    """
    model = ddp.unwrap(model)
    generator = torch.Generator().manual_seed(seed)
    targets, clean, adv = [], [], []
    route_ctx = bn_route(model, route) if has_dual_bn(model) else _null()
    with route_ctx:
        for x, t in loader:
            if cancel is not None and cancel.is_set():
                break
            x, t = x.to(device).float(), t.to(device).float()
            targets.append(t.cpu())
            clean.append(_clean_logits(model, x).cpu())
            if adversarial:
                x_adv = _attack(model, x, t, settings, steps, generator)
                adv.append(_clean_logits(model, x_adv).cpu())
    if not targets:
        return {}
    t = torch.cat(targets).numpy()
    out = {"standard_auc": roc_auc(t, torch.cat(clean).numpy())}
    if adversarial:
        out["adversarial_auc"] = roc_auc(t, torch.cat(adv).numpy())
    return out


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


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


def _loader(dataset, batch_size: int, *, sampler=None, workers: int = 0, device: torch.device, drop_last=False):
    kwargs: dict[str, Any] = {}
    if workers > 0:  # spawn: safe beside a Qt GUI and on macOS/Windows
        kwargs.update(num_workers=workers, multiprocessing_context="spawn", persistent_workers=False)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, drop_last=drop_last,
                      pin_memory=device.type == "cuda", **kwargs)


# ----------------------------------------------------------------------------------------------
class _Splits:
    def __init__(self, records: list, folds: list[list[int]]):
        self.records, self.folds = records, folds

    def train_test(self, fold: int) -> tuple[list, list]:
        held = set(self.folds[fold])
        return [r for i, r in enumerate(self.records) if i not in held], [self.records[i] for i in sorted(held)]


def _prepare_splits(out: Path, config: ExperimentConfig, source: DataSource, ctx: ddp.DistributedContext) -> _Splits:
    path = out / "splits.json"
    records = source.records()
    fingerprint = source.fingerprint()
    existing = read_json(path)
    if existing is not None:
        if existing.get("data_fingerprint") != fingerprint or existing.get("folds") != config.cv.folds \
                or existing.get("seed") != config.cv.seed:
            raise ExperimentError(
                f"{path} was made for different data or [cv] settings; use a new --out folder for this config"
            )
        folds = [list(map(int, f)) for f in existing["test_indices"]]
    else:
        folds = patient_folds(records, config.cv.folds, config.cv.seed)
        if ctx.is_main:
            atomic.write_json(path, {
                "folds": config.cv.folds,
                "seed": config.cv.seed,
                "method": "StratifiedGroupKFold (patient-level)",
                "root": source.root,
                "data_fingerprint": fingerprint,
                "records": [record_to_dict(r) for r in records],
                "test_indices": folds,
                "test_patients": [sorted({str(records[i].patient_id) for i in fold}) for fold in folds],
            })
    for a in range(len(folds)):  # no patient in two held-out folds
        pa = {str(records[i].patient_id) for i in folds[a]}
        for b in range(a + 1, len(folds)):
            leak = pa & {str(records[i].patient_id) for i in folds[b]}
            if leak:
                raise ExperimentError(f"patients {sorted(leak)[:5]} appear in folds {a} and {b}")
    return _Splits(records, folds)


def _check_config(out: Path, config: ExperimentConfig, ctx: ddp.DistributedContext) -> None:
    path = out / "config.toml"
    text = config.to_toml()
    if path.exists():
        try:
            previous = load_config(path)
        except Exception as exc:  # noqa: BLE001
            raise ExperimentError(f"{path} cannot be read ({exc}); use a new --out folder") from exc
        if previous.to_dict() != config.to_dict():
            raise ExperimentError(
                f"{out} already holds a run of a different config (see {path}); use a new --out folder, "
                "or re-run with that config to resume it"
            )
        return
    if ctx.is_main:
        atomic.write_text(path, text)


# ----------------------------------------------------------------------------------------------
def _fold_run(
    *,
    out: Path,
    config: ExperimentConfig,
    source: DataSource,
    splits: _Splits,
    run: dict,
    fold: int,
    device: torch.device,
    ctx: ddp.DistributedContext,
    emit: Callable[[Any], None],
    cancel: threading.Event,
    fingerprint: str,
    train_seed: int,
    seed_folder: int | None = None,
) -> dict | None:
    """Train and evaluate one fold; returns the fold manifest, or None when cancelled."""
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
    manifest: dict[str, Any] = {
        "method_key": key,
        "method": method_dict,
        "point": run.get("point"),
        "params": run.get("params", {}),
        "fold": fold,
        "status": "running",
        "seed": seed,
        "training_seed": train_seed,
        "device": _describe_device(device),
        "world_size": ctx.world_size,
        "versions": versions(),
        "data_fingerprint": fingerprint,
        "model": spec.to_dict(),
        "train_images": len(train_records),
        "test_images": len(test_records),
        "started": (previous or {}).get("started", now()),
        "epochs": t.epochs,
        "epochs_completed": 0,
    }

    def write_manifest() -> None:
        if ctx.is_main:
            atomic.write_json(manifest_path, manifest)

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
        state = torch.load(resume_path, map_location=device, weights_only=True)
        if state.get("format") != RESUME_FORMAT or state.get("method") != json.dumps(method_dict, sort_keys=True):
            raise ExperimentError(f"{resume_path} belongs to a different method or version; delete it to restart the fold")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
        log.info("%s fold %d: resuming after epoch %d", key, fold, start_epoch)
    if ctx.is_main:
        kept = []
        if start_epoch and metrics_path.exists():
            for line in metrics_path.read_text(encoding="utf-8").splitlines():
                if line.strip() and json.loads(line)["epoch"] <= start_epoch:
                    kept.append(line)
        atomic.write_text(metrics_path, "".join(line + "\n" for line in kept))
    manifest["epochs_completed"] = start_epoch
    manifest["resumed_from_epoch"] = start_epoch or None
    write_manifest()

    train_model = ddp.wrap(model, ctx, device, t.sync_batchnorm)
    train_set, test_set = source.dataset(train_records), source.dataset(test_records)
    per_rank = max(1, t.batch_size // ctx.world_size)
    shard = -(-len(train_set) // ctx.world_size)
    drop_last = shard % per_rank == 1  # a batch of one breaks batch norm
    test_loader = _loader(test_set, t.eval_batch_size, workers=t.workers, device=device)

    def batches(epoch: int):
        torch.manual_seed(derive_seed(seed, "epoch", epoch, ctx.rank))
        sampler = DistributedSampler(train_set, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                     seed=derive_seed(seed, "order"))
        sampler.set_epoch(epoch)
        return _loader(train_set, per_rank, sampler=sampler, workers=t.workers, device=device, drop_last=drop_last)

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
                           amp=t.amp)
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
    if status == "cancelled":
        manifest.update(status="cancelled", message="cancelled; re-run the same command to resume", ended=now())
        write_manifest()
        return None

    results: dict[str, Any] = {}
    if ctx.is_main:
        ev = config.evaluation
        results = evaluate_auc(model, test_loader, device, ev, seed=derive_seed(ev.seed, "test", fold))
        results["evaluation"] = {"kind": ev.kind, "eps": ev.eps, "steps": ev.steps, "restarts": ev.restarts,
                                 "bn_route": "clean" if has_dual_bn(model) else None}
        if has_dual_bn(model) and ev.dsbn_oracle:
            oracle = evaluate_auc(model, test_loader, device, ev, seed=derive_seed(ev.seed, "test", fold),
                                  route="adversarial")
            results["oracle_adversarial_auc"] = oracle["adversarial_auc"]
            results["oracle_note"] = ("DSBN adversarial-BN route, attacked and scored through the adversarial BN: "
                                      "an oracle that knows which inputs are adversarial; not a deployable figure")
        save_checkpoint(folder / "model.pt", model, spec)
        manifest.update(status="finished", results=results, ended=now(),
                        seconds=round(time.perf_counter() - started, 3) + (previous or {}).get("seconds", 0.0))
        write_manifest()
        if not t.keep_resume:
            resume_path.unlink(missing_ok=True)
    ddp.barrier(ctx)
    if ctx.is_main:
        emit(FoldFinished(key, fold, results["standard_auc"], results["adversarial_auc"], seed_folder))
    return manifest


# ----------------------------------------------------------------------------------------------
def run_experiment(
    config: ExperimentConfig | str | Path | dict,
    out_dir: str | Path,
    *,
    folds: Sequence[int] | None = None,
    points: Sequence[int] | None = None,
    callback: Callable[[Any], None] | None = None,
    cancel: threading.Event | None = None,
    source: DataSource | None = None,
) -> ExperimentResult:
    """Run (or resume) a cross-validated experiment into ``out_dir``.

    ``folds`` / ``points`` restrict the run to some folds / sweep points (cluster job
    arrays); ``callback`` receives :class:`FoldEvent` and :class:`FoldFinished`;
    ``cancel`` (a ``threading.Event``) stops at the next step, leaving a resumable
    checkpoint. Under ``torchrun`` every fold trains data-parallel; rank 0 writes.
    """
    config = load_config(config)
    out = Path(out_dir)
    cancel = cancel or threading.Event()
    emit = callback or (lambda event: None)
    ctx = ddp.init_from_env(config.training.device)
    device = ddp.device_for(ctx, resolve_device(config.training.device))
    runs = config.runs()
    if points is not None:
        if not config.sweep.active:
            raise SettingError("--point needs a [sweep] in the config")
        bad = [p for p in points if not 0 <= p < len(runs)]
        if bad:
            raise SettingError(f"sweep points {bad} do not exist; this sweep has points 0..{len(runs) - 1}")
        runs = [runs[p] for p in points]
    fold_list = list(range(config.cv.folds)) if folds is None else list(folds)
    bad = [k for k in fold_list if not 0 <= k < config.cv.folds]
    if bad:
        raise SettingError(f"folds {bad} do not exist; [cv] folds = {config.cv.folds} gives folds 0..{config.cv.folds - 1}")
    partial = folds is not None or points is not None

    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, config, ctx)
    source = source or open_source(config, cancel=cancel)
    fingerprint = source.fingerprint()
    splits = _prepare_splits(out, config, source, ctx)
    job = "" if not partial else "job" + "".join(
        [f"_fold{'-'.join(map(str, fold_list))}" if folds is not None else "",
         f"_point{'-'.join(map(str, points))}" if points is not None else ""])
    manifest_path = out / ("manifest.json" if not partial else f"jobs/{job}.json")
    manifest: dict[str, Any] = {
        "name": config.name,
        "status": "running",
        "started": now(),
        "versions": versions(),
        "device": _describe_device(device),
        "world_size": ctx.world_size,
        "seed": config.training.seed,
        "data": source.describe(),
        "data_fingerprint": fingerprint,
        "folds": fold_list,
        "runs": [r["key"] for r in runs],
        "command": " ".join(sys.argv),
    }
    if ctx.is_main:
        atomic.write_json(manifest_path, manifest)

    done: list[tuple[str, int]] = []
    status = "finished"
    try:
        jobs = [(run, seeds, fold) for run in runs for seeds in seed_folders(config) for fold in fold_list]
        for run, (train_seed, seed_folder), fold in jobs:
            if cancel.is_set():
                status = "cancelled"
                break
            fold_manifest = _fold_run(out=out, config=config, source=source, splits=splits, run=run, fold=fold,
                                      device=device, ctx=ctx, emit=emit, cancel=cancel, fingerprint=fingerprint,
                                      train_seed=train_seed, seed_folder=seed_folder)
            if fold_manifest is None:
                status = "cancelled"
                break
            done.append((run["key"], fold) if seed_folder is None else (run["key"], fold, seed_folder))
    except BaseException as exc:
        manifest.update(status="failed", message=str(exc), ended=now())
        if ctx.is_main:
            atomic.write_json(manifest_path, manifest)
        raise
    if status == "finished" and partial:
        status = "partial"
    manifest.update(status=status, ended=now(), folds_run=[list(d) for d in done])
    if status == "cancelled":
        manifest["message"] = "cancelled; re-run the same command to resume"
    results: dict = {}
    if ctx.is_main:
        atomic.write_json(manifest_path, manifest)
        from arfl_studio.experiments.results import collect

        results = collect(out)
    return ExperimentResult(out, status, results, done, manifest.get("message", ""))


# ----------------------------------------------------------------------------------------------
def load_fold_model(run_dir: str | Path, method_key: str, fold: int, seed: int | None = None) -> tuple[nn.Module, ModelSpec]:
    """The trained model of one method's fold (eval mode; DSBN models on the clean route).

    ``seed`` picks the training seed of a several-seed run (default: its first seed).
    """
    if seed is None and (Path(run_dir) / "config.toml").is_file():
        seed = seed_folders(load_config(Path(run_dir) / "config.toml"))[0][1]
    path = fold_dir(run_dir, method_key, fold, seed) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: fold {fold} of {method_key!r} has not finished")
    return load_checkpoint(path)


def fold_records(run_dir: str | Path, fold: int) -> tuple[list, list]:
    """(train_records, test_records) of a fold, from the run's splits.json."""
    splits = read_json(Path(run_dir) / "splits.json")
    if splits is None:
        raise FileNotFoundError(f"{Path(run_dir) / 'splits.json'} is missing or unreadable")
    if not 0 <= fold < len(splits["test_indices"]):
        raise ValueError(f"fold {fold} does not exist; the run has folds 0..{len(splits['test_indices']) - 1}")
    records = [record_from_dict(splits.get("root"), r) for r in splits["records"]]
    held = set(splits["test_indices"][fold])
    return [r for i, r in enumerate(records) if i not in held], [records[i] for i in sorted(held)]
