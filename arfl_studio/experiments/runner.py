"""The cross-validated experiment runner behind ``arfl-studio run`` and the GUI's training pane.

For each method (or sweep point) and each patient-level fold: build the model,
train it with the engine, validate every epoch (standard and adversarial AUC on the
held-out fold), then evaluate the held-out fold with the ``[evaluation]`` attack.

Run folder (every file written atomically)::

    OUT/config.toml      the complete config (re-runs the experiment)
    OUT/manifest.json    versions, device, data fingerprint, status, times
    OUT/splits.json      the records and each fold's held-out indices
    OUT/results.json     the merged results (also ``arfl-studio collect OUT``)
    OUT/<key>/fold_<k>/  metrics.jsonl, manifest.json, model.pt + model.json, resume.pt (+ resume.previous.pt),
                         each .pt with its checksum (NAME.pt.sha256, verified on load)
    OUT/<key>/final/     with ``final``: the same for the model trained on every patient (:mod:`final_run`)

Re-running the same command resumes: finished folds are kept, an unfinished one
continues from its last checkpoint (``resume.pt``: model, optimizer, epoch).

This module orchestrates the run; one fold's training is :mod:`fold_run`, the held-out
evaluation :mod:`fold_evaluation`, the patient-level folds :mod:`splits`.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


from arfl_studio import atomic
from arfl_studio.atomic import NoSpaceError
from arfl_studio.experiments.config import ExperimentConfig, load_config
from arfl_studio.experiments.fold_evaluation import evaluate_auc
from arfl_studio.experiments.fold_failures import INTERRUPTED
from arfl_studio.experiments.fold_plan import FoldEvent, FoldFinished
from arfl_studio.experiments.fold_resume import RESUME_FORMAT
from arfl_studio.experiments.final_run import run_final
from arfl_studio.experiments.fold_run import run_fold
from arfl_studio.experiments.run_loader import RunLoader
from arfl_studio.run_lock import FoldLocks, LockHeld, acquire, run_lock_path
from arfl_studio.experiments.run_status import update_run_status
from arfl_studio.experiments.run_folder import ExperimentError, describe_device, fold_dir, now, seed_folders, versions
from arfl_studio.experiments.sources import DataSource, open_source
from arfl_studio.experiments.splits import plan_official, prepare_splits
from arfl_studio.training import distributed as ddp
from arfl_studio.training.devices import resolve_device
from arfl_studio.training.methods import SettingError

log = logging.getLogger(__name__)

__all__ = [  # the runner's public names (some live in the modules it is split into)
    "RESUME_FORMAT",
    "ExperimentError",
    "ExperimentResult",
    "FoldEvent",
    "FoldFinished",
    "RunFolderInUse",
    "evaluate_auc",
    "run_experiment",
]


@dataclass
class ExperimentResult:
    out_dir: Path
    status: str  # "finished" | "cancelled" | "partial" (a --fold/--point subset finished)
    results: dict = field(default_factory=dict)  # the collect() document
    folds_run: list[tuple] = field(default_factory=list)  # (key, fold) or (key, fold, seed)
    message: str = ""
    finals: list[tuple] = field(default_factory=list)  # (key,) or (key, seed): final models written (final=True)


def _check_config(out: Path, config: ExperimentConfig) -> bool:
    """Refuse an OUT holding a different config (reads only); True when config.toml is there."""
    path = out / "config.toml"
    if not path.exists():
        return False
    try:
        previous = load_config(path)
    except Exception as exc:  # noqa: BLE001
        raise ExperimentError(f"{path} cannot be read ({exc}); use a new --out folder") from exc
    if previous.to_dict() != config.to_dict():
        raise ExperimentError(
            f"{out} already holds a run of a different config (see {path}); use a new --out folder, or re-run with that config to resume it"
        )
    return True


def _open_source(config: ExperimentConfig, cancel: threading.Event) -> DataSource:
    try:
        return open_source(config, cancel=cancel)
    except NoSpaceError as exc:
        raise ExperimentError(str(exc)) from exc
    except PermissionError as exc:
        raise ExperimentError(
            f"cannot read {exc.filename or 'the dataset'}: permission denied; check [data] root and its permissions"
        ) from exc
    except FileNotFoundError as exc:
        raise ExperimentError(f"{exc.filename or 'the dataset'} does not exist; check [data] root") from exc
    except SettingError:
        raise
    except ValueError as exc:  # the data layer's LayoutError and friends name the file and the problem
        raise ExperimentError(f"cannot open the data of [data]: {exc}") from exc


def _remove_leftovers(out: Path, folders: list[Path]) -> None:
    """Temporary files of killed runs (kill -9) in the run folder and the folds this job owns."""
    for folder in [out, out / "jobs", *folders]:
        for path in atomic.remove_stale_temp_files(folder):
            log.info("removed %s, left by a process that no longer runs", path)


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
    restart_damaged: bool = False,
    final: bool = False,
) -> ExperimentResult:
    """Run (or resume) a cross-validated experiment into ``out_dir``.

    ``folds`` / ``points`` restrict the run to some folds / sweep points (cluster job
    arrays); ``callback`` receives :class:`FoldEvent` and :class:`FoldFinished`;
    ``cancel`` (a ``threading.Event``) stops at the next step, leaving a resumable
    checkpoint. Under ``torchrun`` every fold trains data-parallel; rank 0 writes.
    ``restart_damaged``: a fold whose ``resume.pt`` is damaged starts over instead of stopping.
    ``final``: after the folds, also train each method's final model on every patient
    (:mod:`final_run`; the threshold and epoch on held-out training patients as configured).

    The config is validated and the data opened before anything is written to
    ``out_dir``. Each fold this call trains is locked (:mod:`run_lock`): a second
    process on the same fold raises :class:`LockHeld` naming the holder.
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
    count = config.cv.fold_count
    fold_list = list(range(count)) if folds is None else list(folds)
    bad = [k for k in fold_list if not 0 <= k < count]
    if bad:
        given = (
            '[cv] split = "official" gives one fold, 0'
            if config.cv.split == "official"
            else f"[cv] folds = {count} gives folds 0..{count - 1}"
        )
        raise SettingError(f"folds {bad} do not exist; {given}")
    partial = folds is not None or points is not None
    if out.exists() and not out.is_dir():
        raise ExperimentError(f"{out} is a file, not a run folder; choose another --out")
    _check_config(out, config)  # read-only: a different config is refused before anything is written
    jobs = [(run, seeds, fold) for run in runs for seeds in seed_folders(config) for fold in fold_list]
    finals = [(run, seeds, None) for run in runs for seeds in seed_folders(config)] if final else []
    job = (
        ""
        if not partial
        else "job"
        + "".join(
            [
                f"_fold{'-'.join(map(str, fold_list))}" if folds is not None else "",
                f"_point{'-'.join(map(str, points))}" if points is not None else "",
            ]
        )
    )
    manifest_path = out / ("manifest.json" if not partial else f"jobs/{job}.json")
    created_out = not out.exists()

    fold_locks = FoldLocks()
    try:
        if ctx.is_main:  # one torchrun job is one writer: rank 0 holds its locks
            try:
                stale_locks = fold_locks.take(out, [(run["key"], fold, sf) for run, (_, sf), fold in jobs + finals])
            except LockHeld as exc:
                raise RunFolderInUse(str(exc)) from exc
            for stale in stale_locks:
                log.warning("took over a lock left by process %s on %s (no longer running)", stale.get("pid"), stale.get("host"))
        return _run_locked(
            out, config, runs, jobs, finals, fold_list, manifest_path, partial, source, ctx, device, emit, cancel, restart_damaged
        )
    finally:
        fold_locks.release()
        if created_out:  # nothing was written (the data could not be opened): leave no empty folder
            with suppress(OSError):
                out.rmdir()


class RunFolderInUse(ExperimentError):
    """Another live process holds a fold (or the run folder) this run needs; the message names it."""


@contextmanager
def _run_lock(out: Path, ctx: ddp.DistributedContext):
    """The run folder's lock, held while run-level files are written (waits for another job's turn)."""
    if not ctx.is_main:
        yield
        return
    try:
        lock = acquire(run_lock_path(out), wait=120.0)
    except LockHeld as exc:
        raise RunFolderInUse(str(exc)) from exc
    with lock:
        yield


def _run_locked(
    out, config, runs, jobs, finals, fold_list, manifest_path, partial, source, ctx, device, emit, cancel, restart_damaged
) -> ExperimentResult:
    source = source or _open_source(config, cancel)
    plan_official(config, source)  # a dataset without an official split is refused before anything is written
    fingerprint = source.fingerprint()
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

    def write_manifest() -> None:
        if ctx.is_main:
            with _run_lock(out, ctx):
                atomic.write_json(manifest_path, manifest)

    try:
        with _run_lock(out, ctx):
            if ctx.is_main:
                out.mkdir(parents=True, exist_ok=True)
                _remove_leftovers(out, [fold_dir(out, run["key"], fold, sf) for run, (_, sf), fold in jobs + finals])
                if not _check_config(out, config):  # again under the lock: another job may have written it
                    atomic.write_text(out / "config.toml", config.to_toml())
            splits = prepare_splits(out, config, source, ctx)
            if ctx.is_main:
                atomic.write_json(manifest_path, manifest)
    except NoSpaceError as exc:
        raise ExperimentError(str(exc)) from exc

    done: list[tuple] = []
    final_done: list[tuple] = []
    status = "finished"
    # one loader (and one set of worker processes) for every fold of this run
    run_loader = RunLoader(source, splits.records, config.training.workers, device)
    try:
        for run, (train_seed, seed_folder), fold in jobs:
            if cancel.is_set():
                status = "cancelled"
                break
            fold_manifest = run_fold(
                out=out,
                config=config,
                source=source,
                splits=splits,
                run=run,
                fold=fold,
                device=device,
                ctx=ctx,
                emit=emit,
                cancel=cancel,
                fingerprint=fingerprint,
                train_seed=train_seed,
                seed_folder=seed_folder,
                restart_damaged=restart_damaged,
                run_loader=run_loader,
            )
            if fold_manifest is None:
                status = "cancelled"
                break
            done.append((run["key"], fold) if seed_folder is None else (run["key"], fold, seed_folder))
            if ctx.is_main:  # the run's manifest says at once when this fold completed the run
                with _run_lock(out, ctx):
                    update_run_status(out, config)
        for run, (train_seed, seed_folder), _ in finals if status == "finished" else []:
            if (
                cancel.is_set()
                or run_final(
                    out=out,
                    config=config,
                    splits=splits,
                    run=run,
                    device=device,
                    ctx=ctx,
                    emit=emit,
                    cancel=cancel,
                    fingerprint=fingerprint,
                    train_seed=train_seed,
                    run_loader=run_loader,
                    seed_folder=seed_folder,
                    restart_damaged=restart_damaged,
                )
                is None
            ):
                status = "cancelled"
                break
            final_done.append((run["key"],) if seed_folder is None else (run["key"], seed_folder))
    except KeyboardInterrupt:  # Ctrl-C: the folds keep their checkpoints; re-running resumes
        manifest.update(status="cancelled", message=INTERRUPTED, ended=now(), folds_run=[list(d) for d in done])
        _write_quietly(write_manifest)
        raise
    except BaseException as exc:
        manifest.update(status="failed", message=str(exc) or type(exc).__name__, ended=now())
        _write_quietly(write_manifest)
        if isinstance(exc, NoSpaceError):
            raise ExperimentError(str(exc)) from exc
        raise
    finally:
        del run_loader  # its worker processes end with it
    if status == "finished" and partial:
        status = "partial"
    manifest.update(status=status, ended=now(), folds_run=[list(d) for d in done])
    if final_done:
        manifest["finals_run"] = [list(d) for d in final_done]
    if status == "cancelled":
        manifest["message"] = "cancelled; re-run the same command to resume"
    results: dict = {}
    if ctx.is_main:
        from arfl_studio.experiments.results import collect

        try:
            with _run_lock(out, ctx):
                atomic.write_json(manifest_path, manifest)
                results = collect(out)
        except NoSpaceError as exc:
            raise ExperimentError(str(exc)) from exc
    return ExperimentResult(out, status, results, done, manifest.get("message", ""), final_done)


def _write_quietly(write: Callable[[], None]) -> None:
    """Record a failure in the manifest if the disk still lets us (it may be the disk that failed)."""
    try:
        write()
    except (OSError, ExperimentError) as exc:
        log.warning("could not record the run's status: %s", exc)
