"""Stop during end-of-epoch validation, threshold choice or the held-out evaluation: each polls the
cancel flag per batch, reports no numbers of part of a fold, and the run resumes from where it stopped."""

from __future__ import annotations

import json
import threading

import torch

from arfl_studio.experiments import FoldEvent, run_experiment
from arfl_studio.experiments.config import EvaluationConfig
from arfl_studio.experiments.fold_evaluation import evaluate_auc
from arfl_studio.training.events import EpochEvent, StepEvent
from arfl_studio.training.threshold import fit_threshold

from test_experiments import tiny_config


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _batches(cancel: threading.Event, stop_after: int):
    """Four batches; ``cancel`` is set once ``stop_after`` of them were handed out."""
    for i in range(4):
        if i == stop_after:
            cancel.set()
        yield torch.rand(2, 1, 16, 16), torch.tensor([0.0, 1.0])


def test_scoring_and_evaluation_stop_within_a_batch_and_report_nothing():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 1))
    cancel = threading.Event()
    assert fit_threshold(model, _batches(cancel, 1), cancel=cancel) is None
    cancel = threading.Event()
    assert evaluate_auc(model, list(_batches(cancel, 5)), torch.device("cpu"), EvaluationConfig(), cancel=cancel)
    cancel = threading.Event()
    assert evaluate_auc(model, _batches(cancel, 2), torch.device("cpu"), EvaluationConfig(), cancel=cancel) == {}


def test_an_attacked_batch_stops_within_one_attack_step():
    from arfl_studio.experiments.fold_evaluation import score_logits

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 1))
    cancel, forwards = threading.Event(), []

    def count(*_):
        forwards.append(1)
        if len(forwards) == 5:
            cancel.set()  # during the attack of the first batch (a full-size one takes seconds on a CPU)

    model.register_forward_hook(count)
    batches = [(torch.rand(2, 1, 16, 16), torch.tensor([0.0, 1.0]))] * 2
    settings = EvaluationConfig(kind="pgd", eps=0.01, steps=10_000)
    assert score_logits(model, batches, torch.device("cpu"), settings, cancel=cancel) is None
    assert len(forwards) <= 6  # not the 10,000 steps the batch asked for


def test_stop_during_validation_keeps_the_epoch_without_partial_numbers_and_resumes(tmp_path):
    config = tiny_config(training={"epochs": 2}, methods=["A"], cv={"folds": 2, "seed": 0})
    out = tmp_path / "run"
    cancel = threading.Event()

    def stop_at_the_end_of_epoch_1(event):
        inner = getattr(event, "event", None)
        if isinstance(event, FoldEvent) and isinstance(inner, StepEvent) and inner.epoch == 0 and inner.step + 1 == inner.steps_per_epoch:
            cancel.set()  # the last step is done: validation is next

    assert run_experiment(config, out, callback=stop_at_the_end_of_epoch_1, cancel=cancel).status == "cancelled"
    fold = out / "A" / "fold_0"
    lines = _lines(fold / "metrics.jsonl")
    assert [r["epoch"] for r in lines] == [1] and "standard_auc" not in lines[0]  # kept, with no partial AUC
    assert (fold / "resume.pt").is_file() and not (fold / "model.pt").exists()
    assert run_experiment(config, out).status == "finished"
    assert [r["epoch"] for r in _lines(fold / "metrics.jsonl")] == [1, 2]


def test_stop_after_the_last_epoch_skips_the_threshold_and_resumes_straight_to_it(tmp_path):
    config = tiny_config(training={"epochs": 1}, methods=["A"], cv={"folds": 2, "seed": 0})
    out = tmp_path / "run"
    cancel = threading.Event()

    def stop_after_training(event):
        if isinstance(event, FoldEvent) and isinstance(event.event, EpochEvent):
            cancel.set()

    assert run_experiment(config, out, callback=stop_after_training, cancel=cancel).status == "cancelled"
    fold = out / "A" / "fold_0"
    manifest = json.loads((fold / "manifest.json").read_text())
    assert manifest["status"] == "cancelled" and not (fold / "model.pt").exists()
    assert run_experiment(config, out).status == "finished"
    assert [r["epoch"] for r in _lines(fold / "metrics.jsonl")] == [1]  # not trained again
    assert (fold / "model.pt").is_file()
