"""A fold's ``resume.pt``: saved after finished epochs, loaded to continue an interrupted fold.

A resume checkpoint holds the model and optimizer state after an epoch, with the method
it belongs to; ``metrics.jsonl`` is cut back to the epochs it holds, so a resumed fold
writes the same files as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import torch.nn as nn

from arfl_studio import atomic
from arfl_studio.experiments.run_folder import ExperimentError

log = logging.getLogger(__name__)

RESUME_FORMAT = 1
_DAMAGED = "is damaged"


def _damaged_resume(path: Path, key: str, fold: int, reason: str) -> ExperimentError:
    return ExperimentError(
        f"{path} {_DAMAGED} ({reason}); start fold {fold} of {key} over with --restart-damaged "
        f"(or delete that file), then re-run the same command"
    )


def is_damaged(exc: ExperimentError) -> bool:
    """Whether ``exc`` says resume.pt is damaged (and so may be removed to start over)."""
    return _DAMAGED in str(exc)


def _load_resume(path: Path, device: torch.device, method_dict: dict, key: str, fold: int) -> dict:
    """The newest resume checkpoint that is intact: ``resume.pt``, else the one before it
    (``resume.previous.pt``), with a ``"note"`` saying why the newest was passed over."""
    note, first_error = "", None
    for candidate in (path, atomic.previous_path(path)):
        if not candidate.exists():
            continue
        try:
            state = _read_resume(candidate, device, method_dict, key, fold)
        except ExperimentError as exc:
            if not is_damaged(exc):
                raise
            first_error = first_error or exc
            note = note or f"{exc}; resumed from the checkpoint before it"
            log.warning("%s fold %d: %s", key, fold, exc)
            continue
        if candidate != path:
            state["note"] = note
        return state
    raise first_error or _damaged_resume(path, key, fold, "missing")


def _read_resume(path: Path, device: torch.device, method_dict: dict, key: str, fold: int) -> dict:
    try:
        atomic.verify_checksum(path)
    except atomic.DamagedFileError as exc:
        raise _damaged_resume(path, key, fold, "its content no longer matches the checksum written with it") from exc
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a checkpoint, or code in the pickle
        raise _damaged_resume(path, key, fold, f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}") from exc
    if not isinstance(state, dict) or not {"format", "method", "epoch", "model", "optimizer"} <= set(state):
        raise _damaged_resume(path, key, fold, "not a resume checkpoint of this program")
    if state.get("format") != RESUME_FORMAT or state.get("method") != json.dumps(method_dict, sort_keys=True):
        raise ExperimentError(f"{path} belongs to a different method or version; delete it to restart the fold")
    return state


def restore(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, device: torch.device, method_dict: dict, key: str, fold: int
) -> tuple[int, dict | None, str]:
    """Load ``path`` (or, when it is damaged, the checkpoint before it) into ``model`` and
    ``optimizer``; returns the number of epochs it holds, the epoch selection's state (None when
    the run does not select epochs) and a note when the checkpoint before was used.

    Raises :class:`ExperimentError` when the file is damaged (:func:`is_damaged`) or
    belongs to another method or version of the program.
    """
    state = _load_resume(path, device, method_dict, key, fold)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start_epoch = int(state["epoch"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise _damaged_resume(path, key, fold, f"does not fit the model: {str(exc)[:120]}") from exc
    log.info("%s fold %s: resuming after epoch %d", key, fold, start_epoch)
    return start_epoch, state.get("selection"), state.get("note", "")


def save_resume(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, method_dict: dict, epoch: int, selection: dict | None = None
) -> None:
    """Write the state after ``epoch`` (1-based) finished epochs, atomically (with the epoch
    selection's best model so far, when the run selects epochs)."""
    state = {
        "format": RESUME_FORMAT,
        "method": json.dumps(method_dict, sort_keys=True),
        "epoch": epoch,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
    }
    if selection is not None:
        state["selection"] = selection
    atomic.save_torch(path, state, keep_previous=True)


def keep_metrics_through(path: Path, epochs: int) -> None:
    """Cut ``metrics.jsonl`` back to its first ``epochs`` epochs (empty when the fold starts afresh)."""
    kept = []
    if epochs and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                epoch = json.loads(line)["epoch"]
            except (ValueError, KeyError, TypeError):  # a damaged line is dropped, as a later epoch is
                continue
            if isinstance(epoch, int) and epoch <= epochs:
                kept.append(line)
    atomic.write_text(path, "".join(line + "\n" for line in kept))
