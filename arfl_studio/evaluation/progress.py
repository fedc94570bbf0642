"""Progress and cancel for an attack evaluation, at the granularity of one attack step.

Every attack calls ``on_step(name, done, total)`` after each gradient step or query
(:data:`arfl_studio.training.attacks.StepHook`). :class:`ProgressMeter` turns those calls
into :class:`EvaluationProgress` events that name what runs ("pgd eps=0.01 step 3/7,
batch 2/4") with an ETA, and raises :class:`EvaluationCancelled` from the hook as soon
as the cancel flag is set, so a Stop takes effect within one attack step.

Work is counted in units of one forward pass of a batch: a gradient step costs
:data:`GRADIENT_UNITS`, a query (forward pass) one.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

GRADIENT_UNITS = 3  # a forward + backward pass costs about three forward passes
EMIT_EVERY_S = 0.2


class EvaluationCancelled(RuntimeError):
    """The cancel flag was set during an attack evaluation (raised within one attack step)."""


@dataclass(frozen=True)
class EvaluationProgress:
    done: int  # work units finished (see module doc); monotone
    total: int  # work units of the whole evaluation (an estimate until the end)
    stage: str  # "attack" | "sanity" | "done"
    message: str = ""  # what runs now, e.g. "pgd eps=0.01 step 3/7, batch 2/4"
    batch: int = 0  # 1-based batch being processed
    batches: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None  # seconds left at the rate so far (None before any work)

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0


def attack_units(attack: str, steps: int, restarts: int, queries: int, loss: str = "margin") -> int:
    """Estimated cost of one attack call on one batch, in forward-pass units."""
    if attack == "fgsm":
        return GRADIENT_UNITS
    if attack in ("pgd", "pgd-strong"):
        return steps * restarts * GRADIENT_UNITS + (restarts if restarts > 1 else 0)
    if attack == "apgd":
        return (steps + 2) * restarts * GRADIENT_UNITS * (2 if loss == "both" else 1) + restarts
    if attack == "square":
        return queries
    if attack == "worst":
        return (
            attack_units("pgd-strong", steps, restarts, queries)
            + attack_units("apgd", steps, 1, queries)
            + attack_units("square", steps, 1, queries)
            + 3
        )
    raise ValueError(f"unknown attack {attack!r}")


_KIND = {"square": "query", "square-unbroken": "query"}
_PART = {"apgd-ce": "apgd", "square-unbroken": "square"}  # second runs report within their member's share


class ProgressMeter:
    """Counts work units, builds messages, throttles events and polls the cancel flag."""

    def __init__(
        self,
        total_units: int,
        batches: int,
        callback: Callable[[EvaluationProgress], None] | None,
        cancel: threading.Event | None,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total, self.batches = max(int(total_units), 1), batches
        self.callback, self.cancel, self.clock = callback, cancel, clock
        self.start = clock()
        self.base = 0.0  # units of finished attacks
        self.current = 0.0  # units of the running attack so far
        self.batch = 0
        self.stage, self.label = "attack", ""
        self.parts: dict[str, tuple[float, float]] = {}  # member name -> (offset, units) inside the running attack
        self.units = 0.0
        self._last_emit = -1e9

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise EvaluationCancelled("attack evaluation cancelled")

    def begin(self, label: str, units: float, stage: str = "attack", parts: dict[str, float] | None = None) -> None:
        """Start one attack call (``parts``: member name -> units, for an ensemble)."""
        self.check_cancel()
        self.label, self.units, self.stage, self.current = label, float(units), stage, 0.0
        self.parts, offset = {}, 0.0
        for name, u in (parts or {}).items():
            self.parts[name] = (offset, float(u))
            offset += u

    def step(self, name: str, done: int, total: int) -> None:
        """The attacks' ``on_step`` hook."""
        self.check_cancel()
        part = self.parts.get(_PART.get(name, name))
        offset, units = part if part is not None else (0.0, self.units)
        # max: a member's second run (square-unbroken) must not move the count backwards
        self.current = max(self.current, min(offset + units * done / max(total, 1), self.units))
        member = f"{name} " if part is not None or name not in self.label else ""
        self._emit(f"{self.label}: {member}{_KIND.get(name, 'step')} {done}/{total}")

    def end(self) -> None:
        self.base += self.units
        self.current = self.units = 0.0

    def finish_batch(self) -> None:
        self._emit(f"batch {self.batch}/{self.batches} done", force=True)

    def done(self) -> None:
        self.base, self.current, self.stage = float(self.total), 0.0, "done"
        self._emit("done", force=True)

    def _emit(self, what: str, force: bool = False) -> None:
        if self.callback is None:
            return
        now = self.clock()
        if not force and now - self._last_emit < EMIT_EVERY_S:
            return
        self._last_emit = now
        done = self.base + self.current
        self.total = max(self.total, int(round(done)))  # never report more done than total
        elapsed = now - self.start
        eta = elapsed * (self.total - done) / done if done > 0 else None
        message = what if self.stage == "done" else f"{what}, batch {self.batch}/{self.batches}"
        self.callback(
            EvaluationProgress(
                int(done),
                self.total,
                self.stage,
                message,
                self.batch,
                self.batches,
                round(elapsed, 3),
                None if eta is None else round(max(eta, 0.0), 3),
            )
        )
