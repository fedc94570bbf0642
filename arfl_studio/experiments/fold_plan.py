"""What the steps of one fold share: who it is, its records, its folder and manifest, and how it reports.

The fold's steps (:mod:`fold_run`) read their settings from a :class:`FoldPlan` and write
their progress into its manifest; failures go through :meth:`FoldPlan.fail`, so the
manifest and the event the GUI sees always say the same.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from arfl_studio import atomic
from arfl_studio.experiments.epoch_selection import EpochSelection
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.run_folder import now
from arfl_studio.experiments.sources import Unreadable
from arfl_studio.models.registry import ModelSpec
from arfl_studio.training import distributed as ddp
from arfl_studio.training.events import StatusEvent
from arfl_studio.training.methods import MethodSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldEvent:
    """An engine event (StepEvent / EpochEvent / StatusEvent) of one method's fold."""

    method_key: str
    fold: int | None  # None: the final model
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


@dataclass
class FoldPlan:
    """One fold of one method (or sweep point), as its steps share it."""

    key: str
    fold: int | None  # None: the final model, trained on every patient
    seed_folder: int | None  # the seed_S/ level of a multi-seed run, else None
    method: MethodSettings
    spec: ModelSpec
    seed: int  # the fold's initial weights, batch order and per-epoch RNG derive from it
    config: ExperimentConfig
    device: torch.device
    ctx: ddp.DistributedContext
    emit: Callable[[Any], None]
    folder: Path
    train_records: list
    threshold_records: list  # training-fold patients held out to choose the threshold (may be empty)
    test_records: list
    pos_weight: float | None
    previous: dict | None  # the manifest of an earlier, unfinished attempt
    restart_damaged: bool
    manifest: dict[str, Any] = field(default_factory=dict)  # written as the fold goes
    selection: EpochSelection = field(default_factory=EpochSelection)  # select_epoch = "validation-auc"

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def resume_path(self) -> Path:
        return self.folder / "resume.pt"

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.jsonl"

    def write_manifest(self) -> None:
        if self.ctx.is_main:
            atomic.write_json(self.manifest_path, self.manifest)

    def report(self, event: Any) -> None:
        """Pass an engine event on, labelled with this fold."""
        self.emit(FoldEvent(self.key, self.fold, event, self.seed_folder))

    def fail(self, message: str, **extra) -> None:
        """Record the failure; a full disk may refuse even that, which must not hide the cause."""
        self.manifest.update(status="failed", message=message, ended=now(), **extra)
        try:
            self.write_manifest()
        except OSError as exc:
            log.warning("could not write %s: %s", self.manifest_path, exc)
        self.report(StatusEvent("failed", message))

    def skipped(self, item: Unreadable) -> None:
        """An image that stopped decoding mid-fold is left out of its batch, with the reason."""
        seen = self.manifest.setdefault("skipped_images", [])
        if not any(entry["path"] == item.path for entry in seen):
            seen.append({"path": item.path, "reason": item.reason})
            log.warning("%s fold %s: skipped %s: %s", self.key, self.fold, item.path, item.reason)
