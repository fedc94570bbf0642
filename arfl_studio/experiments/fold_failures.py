"""How a fold's training can fail, and what each failure leaves behind.

A non-finite loss, running out of accelerator memory and a full disk mark the fold
failed (manifest and a ``StatusEvent``) and stop the run with a message that says what
to change; Ctrl-C marks it cancelled, leaving ``resume.pt`` to continue from.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from arfl_studio.atomic import NoSpaceError
from arfl_studio.experiments.fold_plan import FoldPlan
from arfl_studio.experiments.run_folder import ExperimentError, now
from arfl_studio.training.events import StatusEvent
from arfl_studio.training.trainer import NonFiniteLossError

INTERRUPTED = "interrupted (Ctrl-C); re-run the same command to resume"


def _record_failure(plan: FoldPlan, message: str, **extra) -> None:
    plan.manifest.update(status="failed", message=message, **extra, ended=now())
    plan.write_manifest()
    plan.report(StatusEvent("failed", message))


def _out_of_memory(plan: FoldPlan) -> str:
    t, size = plan.config.training, plan.config.preprocess.get("size")
    return (
        f"{plan.device} ran out of memory training {plan.key} fold {plan.fold} (batch_size {t.batch_size}, "
        f"image size {size}): use a smaller [training] batch_size or [preprocess] size, "
        f"or [model] fine_tune = \"paper\""
    )


@contextmanager
def training_failures(plan: FoldPlan) -> Iterator[None]:
    """Around the trainer: record each way training can fail in the fold's manifest, then stop."""
    try:
        yield
    except NonFiniteLossError as exc:
        _record_failure(plan, str(exc), failed_epoch=exc.epoch + 1, failed_step=exc.step + 1)
        raise ExperimentError(f"{plan.key} fold {plan.fold}: {exc}") from exc
    except torch.OutOfMemoryError as exc:
        message = _out_of_memory(plan)
        if plan.device.type == "cuda":
            torch.cuda.empty_cache()
        _record_failure(plan, message)
        raise ExperimentError(message) from exc
    except KeyboardInterrupt:  # Ctrl-C: resume.pt holds the last finished epoch
        plan.manifest.update(status="cancelled", message=INTERRUPTED, ended=now())
        try:
            plan.write_manifest()
        except OSError:
            pass
        raise
    except NoSpaceError as exc:
        plan.fail(str(exc))
        raise ExperimentError(f"{plan.key} fold {plan.fold}: {exc}") from exc
