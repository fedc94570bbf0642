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
continues from its last checkpoint (``resume.pt``: model, optimizer, epoch).

This module orchestrates the run; one fold's training is :mod:`fold_run`, the held-out
evaluation :mod:`fold_evaluation`, the patient-level folds :mod:`splits`.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch.nn as nn

from arfl_studio import atomic
from arfl_studio.experiments.config import ExperimentConfig, load_config
from arfl_studio.experiments.fold_evaluation import evaluate_auc
from arfl_studio.experiments.fold_run import RESUME_FORMAT, FoldEvent, FoldFinished, run_fold
from arfl_studio.experiments.run_folder import ExperimentError, describe_device, fold_dir, now, seed_folders, versions
from arfl_studio.experiments.sources import DataSource, open_source
from arfl_studio.experiments.splits import fold_records, prepare_splits
from arfl_studio.models.registry import DecisionThreshold, ModelSpec, load_checkpoint, load_threshold
from arfl_studio.training import distributed as ddp
from arfl_studio.training.devices import resolve_device
from arfl_studio.training.methods import SettingError

__all__ = [  # the runner's public names (some live in the modules it is split into)
    "RESUME_FORMAT", "ExperimentError", "ExperimentResult", "FoldEvent", "FoldFinished", "evaluate_auc",
    "fold_records", "load_fold_model", "run_experiment",
]


@dataclass
class ExperimentResult:
    out_dir: Path
    status: str  # "finished" | "cancelled" | "partial" (a --fold/--point subset finished)
    results: dict = field(default_factory=dict)  # the collect() document
    folds_run: list[tuple] = field(default_factory=list)  # (key, fold) or (key, fold, seed)
    message: str = ""


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
    splits = prepare_splits(out, config, source, ctx)
    job = "" if not partial else "job" + "".join(
        [f"_fold{'-'.join(map(str, fold_list))}" if folds is not None else "",
         f"_point{'-'.join(map(str, points))}" if points is not None else ""])
    manifest_path = out / ("manifest.json" if not partial else f"jobs/{job}.json")
    manifest: dict[str, Any] = {
        "name": config.name,
        "status": "running",
        "started": now(),
        "versions": versions(),
        "device": describe_device(device),
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
            fold_manifest = run_fold(out=out, config=config, source=source, splits=splits, run=run, fold=fold,
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
    return load_checkpoint(_fold_checkpoint(run_dir, method_key, fold, seed))


def load_fold_threshold(run_dir: str | Path, method_key: str, fold: int, seed: int | None = None) -> DecisionThreshold:
    """The decision threshold stored with one fold's model (logit 0 with a note for older runs)."""
    return load_threshold(_fold_checkpoint(run_dir, method_key, fold, seed))


def _fold_checkpoint(run_dir: str | Path, method_key: str, fold: int, seed: int | None) -> Path:
    if seed is None and (Path(run_dir) / "config.toml").is_file():
        seed = seed_folders(load_config(Path(run_dir) / "config.toml"))[0][1]
    path = fold_dir(run_dir, method_key, fold, seed) / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: fold {fold} of {method_key!r} has not finished")
    return path
