"""Speed of the two-moon reproduction (run with ``pytest -m benchmark tests/benchmarks -s``).

1. Training the full table (rows A-H + D', F', five seeds, 10,000 points) as batched
   ensembles against the naive loop that trains one network after another with the
   engine's ``train``, both for a few epochs in the same run; the per-epoch times are
   extrapolated to the paper's 5000 epochs.
2. The exact worst-case search of 1,000 test points at the default lattice, against a
   loop over points (a subset, scaled up) in the same run.

Only ratios are asserted. ``ARFL_BENCH_JSON=path`` also writes the figures as JSON.
"""

import os
import time

import pytest
import torch

from arfl_studio.data.demo.two_moons import two_moons_for_seeds
from arfl_studio.evaluation.worst_case import worst_case_search
from arfl_studio.experiments.two_moons import TwoMoonSettings, build_rows
from arfl_studio.experiments.two_moons_training import train_batched, train_naive
from arfl_studio.models.mlp import TwoMoonMLP

pytestmark = pytest.mark.benchmark
EPOCHS = int(os.environ.get("ARFL_BENCH_EPOCHS", "3"))
BATCH = int(os.environ.get("ARFL_BENCH_BATCH", "1000"))
RESULTS: dict = {}


def _dump():
    path = os.environ.get("ARFL_BENCH_JSON")
    if path:
        from arfl_studio.atomic import write_json

        write_json(path, RESULTS)


def test_batched_table_is_faster_than_one_network_at_a_time():
    s = TwoMoonSettings(epochs=EPOCHS, batch_size=BATCH)
    rows = build_rows(s)
    data = two_moons_for_seeds(s.seeds, s.n_train, s.n_test)
    quiet = lambda m: None  # noqa: E731
    cpu = torch.device("cpu")
    started = time.perf_counter()
    train_batched(s, rows, data, cpu, quiet)
    batched = time.perf_counter() - started
    started = time.perf_counter()
    train_naive(s, rows, data, cpu, quiet)
    naive = time.perf_counter() - started
    ratio = naive / batched
    RESULTS["training"] = {
        "epochs_measured": EPOCHS,
        "networks": len(rows) * len(s.seeds),
        "batch_size": s.batch_size,
        "batched_seconds": batched,
        "naive_seconds": naive,
        "ratio": ratio,
        "batched_seconds_per_epoch": batched / EPOCHS,
        "naive_seconds_per_epoch": naive / EPOCHS,
        "extrapolated_5000_epochs_batched_s": batched / EPOCHS * 5000,
        "extrapolated_5000_epochs_naive_s": naive / EPOCHS * 5000,
        "torch_threads": torch.get_num_threads(),
    }
    print(
        f"\nfull table, {EPOCHS} epochs: batched {batched:.2f} s, naive {naive:.2f} s, ratio {ratio:.1f}x; "
        f"5000 epochs ~ {batched / EPOCHS * 5000 / 60:.1f} min batched vs {naive / EPOCHS * 5000 / 60:.1f} min naive"
    )
    _dump()
    assert ratio >= 2.0


def test_worst_case_search_is_vectorised():
    data = two_moons_for_seeds([0], 100, 1000)
    model = TwoMoonMLP(seeds=[0])
    x, t = data.x_test[0], data.y_test[0]
    worst_case_search(model, x[:10], t[:10], 0.2)  # warm-up
    started = time.perf_counter()
    result = worst_case_search(model, x, t, 0.2)
    vectorised = time.perf_counter() - started
    subset = 25
    started = time.perf_counter()
    for i in range(subset):
        worst_case_search(model, x[i : i + 1], t[i : i + 1], 0.2)
    looped = (time.perf_counter() - started) * len(x) / subset
    RESULTS["worst_case"] = {
        "points": len(x),
        "seconds": vectorised,
        "points_per_second": len(x) / vectorised,
        "evaluations_per_point": result.evaluations,
        "model_evaluations_per_second": len(x) * result.evaluations / vectorised,
        "per_point_loop_seconds_extrapolated": looped,
        "ratio": looped / vectorised,
    }
    print(
        f"\nworst case, 1000 points: {vectorised:.2f} s ({len(x) / vectorised:.0f} points/s, "
        f"{result.evaluations} evaluations per point); per-point loop ~{looped:.1f} s ({looped / vectorised:.0f}x)"
    )
    _dump()
    assert looped / vectorised >= 1.5  # each point alone is already vectorised over its 2044 offsets
