"""The training loop shared by every method, every model and every front end.

It reports progress through a plain callback, checks a cancel flag
(``threading.Event``) before every step, stops with a named epoch and step on a
non-finite loss, and calls ``on_epoch_end`` (checkpointing, validation) after
each epoch. No Qt here.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sized, cast

import torch
import torch.nn as nn

from arfl_studio.training.events import EpochEvent, EventCallback, StatusEvent, StepEvent, ignore_events
from arfl_studio.training.methods import MethodSettings, SettingError
from arfl_studio.training.objective import LossTerms, compute_loss


class NonFiniteLossError(RuntimeError):
    def __init__(self, epoch: int, step: int, value: float):
        super().__init__(
            f"the training loss became {value} at epoch {epoch + 1}, step {step + 1}; try a lower learning rate or a smaller lambda"
        )
        self.epoch, self.step, self.value = epoch, step, value


@dataclass
class TrainResult:
    status: str  # "finished" or "cancelled"
    epochs_completed: int
    history: list[EpochEvent] = field(default_factory=list)


Batches = Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]


Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], LossTerms]


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Batches,
    method: MethodSettings | None,
    epochs: int,
    *,
    objective: Objective | None = None,
    start_epoch: int = 0,
    device: torch.device | str = "cpu",
    callback: EventCallback = ignore_events,
    cancel: threading.Event | None = None,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    on_epoch_end: Callable[[EpochEvent], None] | None = None,
    amp: bool = False,
    loss_scale: float = 1.0,
) -> TrainResult:
    """Train for ``epochs`` epochs (resuming at ``start_epoch``).

    ``batches(epoch)`` yields ``(x, targets)`` for that epoch (targets in {0, 1}).
    The loss is ``method``'s (:func:`compute_loss`) unless ``objective(model, x,
    targets)`` is given (e.g. an ensemble whose members follow different methods).
    ``evaluate(epoch)`` returns validation metrics. ``loss_scale`` multiplies the
    loss before backward (an ensemble of M networks trains with M, so each member
    gets the gradient of its own mean loss). ``amp`` enables CUDA autocast with a
    gradient scaler; attacks stay in float32 regardless.
    """
    if objective is None:
        if method is None:
            raise SettingError("train needs a method (or an objective)")
        method.validate()
        objective = lambda m, x, t: compute_loss(m, x, t, method)  # noqa: E731
    if epochs < 1:
        raise SettingError(f"epochs must be >= 1, got {epochs}")
    device = torch.device(device)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    cancel = cancel or threading.Event()
    history: list[EpochEvent] = []
    callback(StatusEvent("started"))
    for epoch in range(start_epoch, epochs):
        started = time.perf_counter()
        model.train()
        sums: dict[str, torch.Tensor] = {}
        steps = 0
        iterable = batches(epoch)
        total_steps = len(cast(Sized, iterable)) if hasattr(iterable, "__len__") else None
        for step, (x, targets) in enumerate(iterable):
            if cancel.is_set():
                callback(StatusEvent("cancelled", f"stopped at epoch {epoch + 1}, step {step + 1}"))
                return TrainResult("cancelled", epoch - start_epoch, history)
            x = x.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True).float()
            autocast = torch.autocast("cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()
            with autocast:
                terms = objective(model, x, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(terms.total * loss_scale).backward()
            scaler.step(optimizer)
            scaler.update()
            values = dict(zip(terms.parts, torch.stack(list(terms.parts.values())).float().cpu().tolist()))
            if not math.isfinite(values["total"]):
                raise NonFiniteLossError(epoch, step, values["total"])
            for name, value in terms.parts.items():
                sums[name] = sums.get(name, 0.0) + value.float()
            steps += 1
            callback(StepEvent(epoch, step, total_steps, values))
        means = {name: float(total) / max(steps, 1) for name, total in sums.items()}
        metrics = evaluate(epoch) if evaluate is not None else {}
        event = EpochEvent(epoch, epochs, means, metrics, time.perf_counter() - started)
        history.append(event)
        if on_epoch_end is not None:
            on_epoch_end(event)  # the epoch's training is kept even when its validation was stopped
        callback(event)
        if cancel.is_set():  # stopped during validation (which polls it per batch and then reports nothing)
            callback(StatusEvent("cancelled", f"stopped after epoch {epoch + 1}"))
            return TrainResult("cancelled", epoch + 1 - start_epoch, history)
    callback(StatusEvent("finished"))
    return TrainResult("finished", epochs - start_epoch, history)
