"""How long Stop takes when pressed at the end of an epoch, during validation (adversarial AUC on
the held-out fold): the time from setting the cancel flag to the run returning, next to how long the
uninterrupted validation takes (what Stop used to wait for). Goal (issue 25): Stop <= 1 s.

Run: pytest -m benchmark tests/benchmarks/test_bench_stop_latency.py -s
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_experiments import tiny_config  # noqa: E402

from arfl_studio.experiments import FoldEvent, run_experiment  # noqa: E402
from arfl_studio.training.events import EpochEvent, StepEvent  # noqa: E402

pytestmark = pytest.mark.benchmark

CONFIG = tiny_config(
    data={"source": "synthetic", "synthetic_samples": 96, "synthetic_size": [64, 64]},
    preprocess={"size": [64, 64], "channels": 1, "crop": "none"},
    training={"epochs": 2, "batch_size": 8, "validation_attack_steps": 40},
    evaluation={"eps": 1e-3, "steps": 40},
    methods=["A"],
)


def _last_step(event) -> bool:
    inner = getattr(event, "event", None)
    return isinstance(event, FoldEvent) and isinstance(inner, StepEvent) and inner.epoch == 0 and inner.step + 1 == inner.steps_per_epoch


def test_stop_during_validation_returns_within_a_second(tmp_path):
    marks = {}

    def watch(event):
        if _last_step(event):
            marks["validation_from"] = time.perf_counter()
        elif isinstance(event, FoldEvent) and isinstance(event.event, EpochEvent) and "validation_s" not in marks:
            marks["validation_s"] = time.perf_counter() - marks["validation_from"]
            cancel_full.set()

    cancel_full = threading.Event()
    run_experiment(CONFIG, tmp_path / "full", callback=watch, cancel=cancel_full)

    cancel = threading.Event()

    def stop(event):
        if _last_step(event):
            cancel.set()
            marks["stop_at"] = time.perf_counter()

    result = run_experiment(CONFIG, tmp_path / "stopped", callback=stop, cancel=cancel)
    stop_s = time.perf_counter() - marks["stop_at"]
    print(
        f"\nvalidation of one epoch (what Stop used to wait for): {marks['validation_s']:.2f} s; "
        f"Stop pressed as validation starts returned in {stop_s:.2f} s"
    )
    assert result.status == "cancelled"
    assert stop_s <= 1.0
