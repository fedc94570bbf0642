"""Progress events of a training run, reported through a plain callable.

The GUI's worker turns these into Qt signals; the CLI prints them. They carry
plain Python numbers only, never tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union


@dataclass(frozen=True)
class StepEvent:
    epoch: int  # 0-based
    step: int  # 0-based within the epoch
    steps_per_epoch: int | None
    losses: dict[str, float]


@dataclass(frozen=True)
class EpochEvent:
    epoch: int  # 0-based
    epochs: int
    losses: dict[str, float]  # means over the epoch's steps
    metrics: dict[str, float] = field(default_factory=dict)  # e.g. validation AUCs
    seconds: float = 0.0


@dataclass(frozen=True)
class StatusEvent:
    status: str  # "started", "finished", "cancelled", "failed"
    message: str = ""


TrainingEvent = Union[StepEvent, EpochEvent, StatusEvent]
EventCallback = Callable[[TrainingEvent], None]


def ignore_events(event: TrainingEvent) -> None:
    return None
