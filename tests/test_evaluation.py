import json
import threading
import time

import numpy as np
import pytest
import torch

from arfl_studio.evaluation import (
    CHECK_NAMES,
    EvaluationCancelled,
    evaluate_robustness,
    sanity_checks,
    threshold_metrics,
)
from arfl_studio.evaluation import progress
from arfl_studio.evaluation.synthetic import QuantizedInput, StaircaseInput, blob_images, train_tiny_cnn

EPS = [1e-3, 1e-2, 3e-2, 0.1]


@pytest.fixture(scope="module")
def model_and_data():
    torch.manual_seed(0)
    x, y = blob_images(96, size=24, seed=1)
    model = train_tiny_cnn(x, y, epochs=8, width=4)
    xt, yt = blob_images(32, size=24, seed=2)
    return model, xt, yt


def test_threshold_metrics_by_hand():
    t = np.array([1, 1, 0, 0, 1])
    z = np.array([2.0, -1.0, -3.0, 0.5, 1.0])
    m = threshold_metrics(t, z)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["sensitivity"] == pytest.approx(2 / 3) and m["specificity"] == pytest.approx(1 / 2)
    m = threshold_metrics(t, z, threshold=1.5)  # the model's own threshold
    assert m["sensitivity"] == pytest.approx(1 / 3) and m["specificity"] == 1.0


def test_standard_model_curve_falls_and_no_warnings(model_and_data):
    model, x, y = model_and_data
    report = evaluate_robustness(model, x, y, attack="pgd", eps=EPS, probe_queries=60)
    eps, auc = report.auc_curve()
    assert report.clean["auc"] > 0.9
    assert all(b <= a + 0.02 for a, b in zip([report.clean["auc"]] + auc, auc))
    assert auc[-1] <= 0.5
    assert report.warnings == []
    doc = json.loads(json.dumps(report.to_json()))  # plain JSON
    assert doc["warnings"] == [] and doc["attack"] == "pgd"
    # what "passed" covers, in words (the GUI shows it instead of a fixed sentence)
    assert doc["sanity_summary"].startswith("Sanity checks passed") and "pgd broke the model at eps=0.5" in doc["checks_run"]
    assert "pgd was at least as strong as FGSM" in doc["checks_run"]
    assert {"auc", "accuracy", "sensitivity", "specificity"} <= set(doc["clean"])
    assert [r["eps"] for r in doc["results"]] == EPS
    assert set(doc["probes"]) == {"fgsm", "square"}
    last = doc["results"][-1]
    assert last["flipped_count"] == len(last["flipped"]) > 0
    case = last["flipped"][0]
    assert {"index", "label", "clean_prob", "adversarial_prob"} <= set(case)
    assert (case["clean_prob"] > 0.5) != (case["adversarial_prob"] > 0.5)


def test_gradient_masked_model_is_flagged(model_and_data):
    model, x, y = model_and_data
    masked = QuantizedInput(model, levels=8)
    report = evaluate_robustness(masked, x, y, attack="pgd", eps=EPS, probe_queries=60)
    names = {w.name for w in report.warnings}
    assert "zero_input_gradients" in names
    assert "gradient_free_beats_white_box" in names
    assert "large_eps_not_broken" in names
    assert names <= set(CHECK_NAMES)
    for w in report.to_json()["warnings"]:
        assert set(w) == {"name", "message", "severity"} and w["message"]


def test_sanity_checks_each_rule():
    names = lambda ws: {w.name for w in ws}  # noqa: E731

    def m(auc, acc):
        return {"auc": auc, "accuracy": acc}

    ok = sanity_checks(
        attack="pgd",
        clean=m(0.9, 0.8),
        adversarial={0.01: m(0.6, 0.5), 0.1: m(0.1, 0.1)},
        probes={"fgsm": {0.01: m(0.7, 0.6), 0.1: m(0.3, 0.2)}, "square": {0.01: m(0.8, 0.7), 0.1: m(0.2, 0.2)}},
        large_eps={"eps": 0.5, "auc": 0.0, "accuracy": 0.05},
        n=100,
    )
    assert ok == []
    assert names(sanity_checks(attack="pgd", clean=0.9, adversarial={0.01: 0.3, 0.1: 0.6})) == {"auc_rises_with_eps"}
    assert names(sanity_checks(attack="pgd", clean=m(0.9, 0.9), adversarial={0.01: m(0.3, 0.2), 0.1: m(0.2, 0.5)}, n=100)) == {
        "accuracy_rises_with_eps"
    }
    assert names(sanity_checks(attack="apgd", clean=0.9, adversarial={0.01: 0.6}, probes={"fgsm": {0.01: 0.4}})) == {"pgd_weaker_than_fgsm"}
    # an accuracy failure alone is caught (AUC equal), at any eps of the sweep
    acc_only = sanity_checks(
        attack="apgd",
        clean=m(0.9, 0.9),
        adversarial={0.01: m(0.5, 0.6), 0.03: m(0.1, 0.457)},
        probes={"fgsm": {0.01: m(0.5, 0.6), 0.03: m(0.1, 0.386)}},
        n=100,
    )
    assert names(acc_only) == {"pgd_weaker_than_fgsm"} and "0.457 vs 0.386" in acc_only[0].message
    # ... but one image of difference is not a failure
    assert (
        sanity_checks(attack="apgd", clean=m(0.9, 0.9), adversarial={0.01: m(0.5, 0.6)}, probes={"fgsm": {0.01: m(0.5, 0.57)}}, n=32) == []
    )
    assert names(sanity_checks(attack="fgsm", clean=0.9, adversarial={0.01: 0.4}, probes={"pgd": {0.01: 0.6}})) == {"pgd_weaker_than_fgsm"}
    assert names(sanity_checks(attack="square", clean=0.9, adversarial={0.01: 0.2}, probes={"pgd": {0.01: 0.6}, "fgsm": {0.01: 0.7}})) == {
        "gradient_free_beats_white_box"
    }
    # the ensemble compares its own members
    assert names(
        sanity_checks(
            attack="worst",
            clean=0.9,
            adversarial={0.01: 0.2},
            members={"pgd-strong": {0.01: 0.6}, "apgd": {0.01: 0.5}, "square": {0.01: 0.2}},
        )
    ) == {"gradient_free_beats_white_box"}
    for big in ({"eps": 0.5, "auc": 0.47, "accuracy": 0.1}, {"eps": 0.5, "auc": 0.0, "accuracy": 0.5}):
        assert names(sanity_checks(attack="pgd", clean=0.9, adversarial={0.01: 0.85}, large_eps=big)) == {"large_eps_not_broken"}
    ws = sanity_checks(
        attack="pgd",
        clean=0.9,
        adversarial={0.01: 0.5},
        n=10,
        gradients={"zero_images": 2, "nan_images": 1, "sparse_images": 3},
        nan_outputs=3,
    )
    assert names(ws) == {"zero_input_gradients", "sparse_input_gradients", "nan_input_gradients", "nan_outputs"}
    assert {w.severity for w in ws if w.name.startswith("nan")} == {"error"}


def test_dataset_input_records_and_callback(model_and_data):
    model, x, y = model_and_data
    dataset = torch.utils.data.TensorDataset(x[:10], y[:10])
    records = [{"id": f"case{i}.dcm", "patient_id": f"P{i // 2}"} for i in range(10)]
    events = []
    report = evaluate_robustness(
        model, dataset, attack="fgsm", eps=0.1, records=records, probes=False, large_eps=None, batch_size=4, callback=events.append
    )
    assert events[-1].stage == "done" and events[-1].done == events[-1].total
    done = [e.done for e in events]
    assert done == sorted(done) and all(e.batches == 3 for e in events)
    flips = report.flipped(0.1)
    assert flips and all(f["id"] == f"case{f['index']}.dcm" and "patient_id" in f for f in flips)
    # the same numbers from the tensor API
    again = evaluate_robustness(model, x[:10], y[:10], attack="fgsm", eps=[0.1], probes=False, large_eps=None)
    np.testing.assert_allclose(again.adversarial_logits[0.1], report.adversarial_logits[0.1], rtol=1e-5, atol=1e-5)


def test_sweep_reuses_clean_pass(model_and_data):
    model, x, y = model_and_data
    calls = {"n": 0}
    seen = []

    class Counting(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            calls["n"] += 1
            return x[i], y[i]

    report = evaluate_robustness(model, Counting(), attack="fgsm", eps=[1e-3, 1e-2, 0.1], probes=False, large_eps=None)
    assert calls["n"] == 8  # each image loaded once for three eps
    seen.append(report.clean_logits)
    assert len(report.eps) == 3


def test_cancel(model_and_data):
    model, x, y = model_and_data
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(EvaluationCancelled):
        evaluate_robustness(model, x, y, eps=0.01, cancel=cancel)


@pytest.mark.parametrize("where", ["attack", "apgd", "worst", "square", "square probe", "large eps"])
def test_stop_takes_effect_within_a_second_during_any_attack(model_and_data, where):
    # Each setting would run for minutes; a timer thread sets cancel; the call must raise within ~1 s.
    model, x, y = model_and_data
    long = 100_000
    kwargs = {
        "attack": dict(attack="pgd-strong", steps=long, probes=False, large_eps=None),
        "apgd": dict(attack="apgd", steps=long, probes=False, large_eps=None),
        "worst": dict(attack="worst", steps=2, restarts=1, queries=long, probes=False, large_eps=None),
        "square probe": dict(attack="fgsm", probes=["square"], probe_queries=long, large_eps=None),
        "square": dict(attack="square", queries=long, probes=False, large_eps=None),
        "large eps": dict(attack="pgd", steps=long, eps=[0.0], probes=False),
    }[where]
    kwargs.setdefault("eps", [0.01])
    cancel = threading.Event()
    set_at = {}

    def stop():
        set_at["t"] = time.perf_counter()
        cancel.set()

    timer = threading.Timer(0.5, stop)
    timer.start()
    try:
        with pytest.raises(EvaluationCancelled):
            evaluate_robustness(model, x, y, cancel=cancel, batch_size=32, **kwargs)
    finally:
        timer.cancel()
    assert "t" in set_at and time.perf_counter() - set_at["t"] < 1.0


def test_progress_names_each_step_with_an_eta(model_and_data, monkeypatch):
    monkeypatch.setattr(progress, "EMIT_EVERY_S", 0.0)  # every event, not a few per second
    model, x, y = model_and_data
    events = []
    evaluate_robustness(model, x[:16], y[:16], attack="pgd", eps=[0.01], steps=3, probe_queries=4, batch_size=8, callback=events.append)
    messages = [e.message for e in events]
    assert "pgd eps=0.01: step 3/3, batch 2/2" in messages
    assert "sanity: square eps=0.01: query 4/4, batch 1/2" in messages
    assert "sanity: fgsm eps=0.01: step 1/1, batch 1/2" in messages
    assert any(m.startswith("sanity: pgd eps=0.5: step") for m in messages)  # the large-eps check names itself too
    done = [e.done for e in events]
    assert done == sorted(done) and events[-1].done == events[-1].total and events[-1].stage == "done"
    assert all(e.eta_s is not None and e.eta_s >= 0 for e in events[1:])
    assert {e.stage for e in events} == {"attack", "sanity", "done"}


def test_user_chooses_sanity_checks_and_their_budget(model_and_data):
    model, x, y = model_and_data
    report = evaluate_robustness(
        model, x, y, attack="pgd", eps=[0.01, 0.03], steps=3, probes=["square"], probe_queries=7, probe_images=9, large_eps=None
    )
    assert set(report.probes) == {"square"} and report.large_eps_check is None
    assert len(report.probe_indices) == 9 and all(len(v) == 9 for v in report.probes["square"].values())
    doc = report.to_json()
    assert doc["probe_images"] == 9 and doc["settings"]["probe_queries"] == 7
    assert [r["eps"] for r in doc["probes"]["square"]] == [0.01, 0.03]
    with pytest.raises(ValueError, match="probes"):
        evaluate_robustness(model, x, y, eps=0.01, probes=["cw"])


def test_staircase_front_raises_masking_warnings(model_and_data):
    # tanh(1000 (x - k/8)) steps: differentiable, but ~85 % of the pixels get an exactly-zero gradient
    # and the rest only point at the nearest step. Before: only gradient_free_beats_white_box fired.
    model, x, y = model_and_data
    report = evaluate_robustness(
        StaircaseInput(model, levels=8), x, y, attack="pgd", eps=[0.01, 0.03], steps=5, probe_queries=60, large_eps=None
    )
    names = {w.name for w in report.warnings}
    assert "sparse_input_gradients" in names
    assert report.gradient_stats["zero_pixel_fraction_mean"] > 0.5 and report.zero_gradients == 0
    assert report.gradient_stats["images_mostly_zero"] == len(x)
    assert report.to_json()["gradient_check"]["images_over_90_percent_zero"] == 0  # partial: ~85 % per image
    plain = evaluate_robustness(model, x, y, attack="pgd", eps=[0.01], steps=5, probes=False, large_eps=None)
    assert plain.gradient_stats["zero_pixel_fraction_max"] < 0.05 and plain.warnings == []


def test_empty_flip_list_says_why_and_counts_cases_that_moved(model_and_data):
    model, x, y = model_and_data
    # at a threshold far below every logit all images are called malignant: benign ones move up, none crosses
    report = evaluate_robustness(model, x, y, attack="pgd", eps=[0.003], steps=3, threshold=-1e3, probes=False, large_eps=None)
    result = report.to_json()["results"][0]
    assert result["flipped"] == [] and result["flipped_count"] == 0
    assert result["moved_against_label"] > 0 and result["misclassified_clean"] == int((y < 0.5).sum())
    assert "no prediction crossed the decision threshold" in result["empty_reason"]
    assert f"{result['moved_against_label']} of {len(y)} cases moved against their label" in result["empty_reason"]


def test_json_is_valid_when_auc_is_undefined(model_and_data):
    model, x, y = model_and_data
    benign = y < 0.5
    report = evaluate_robustness(model, x[benign], y[benign], attack="fgsm", eps=[0.01], probes=["fgsm"], large_eps=None)
    doc = report.to_json()
    text = json.dumps(doc, allow_nan=False)  # raises on NaN / Infinity
    assert doc["clean"]["auc"] is None and doc["results"][0]["auc"] is None and doc["clean"]["sensitivity"] is None
    assert "only one class" in doc["auc_note"] and "NaN" not in text
    assert "n/a" in report.table() and "only one class" in report.table()


def test_model_modes_restored(model_and_data):
    model, x, y = model_and_data
    model.train()
    model.body[1].eval()  # a BN frozen on purpose
    try:
        evaluate_robustness(model, x[:8], y[:8], attack="apgd", eps=0.01, steps=3, probes=False, large_eps=None)
        assert model.training and not model.body[1].training
    finally:
        model.eval()


def test_bad_settings(model_and_data):
    model, x, y = model_and_data
    with pytest.raises(ValueError):
        evaluate_robustness(model, x, y, attack="cw", eps=0.1)
    with pytest.raises(ValueError):
        evaluate_robustness(model, x, y, eps=[-0.1])
    with pytest.raises(ValueError):
        evaluate_robustness(model, x, None, eps=0.1)


@pytest.mark.parametrize("attack", ["pgd", "apgd"])
def test_flipped_cases_are_reproducible_from_the_kept_delta(model_and_data, attack):
    model, x, y = model_and_data
    report = evaluate_robustness(model, x, y, attack=attack, eps=[0.03], steps=5, probes=False, large_eps=None, batch_size=8)
    flips = report.flipped(0.03)
    assert flips
    for case in flips:
        i = case["index"]
        delta = report.case_delta(0.03, i)
        assert case["delta_kept"] and delta.dtype == np.float16 and delta.shape == tuple(x.shape[1:])
        assert np.abs(delta.astype(np.float32)).max() <= 0.03 + 1e-3
        settings = case["attack_settings"]
        assert settings["attack"] == attack and settings["eps"] == 0.03 and settings["steps"] == 5
        assert {"restarts", "step_size", "loss", "seed", "clamp", "threshold_logit"} <= set(settings)
        x_adv = report.adversarial_input(0.03, i, x[i])  # what the viewer does, one image alone
        assert (x_adv - x[i]).abs().max() <= 0.03 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        with torch.no_grad():
            z = model(x_adv[None]).item()
        assert z == pytest.approx(case["adversarial_logit"], abs=1e-4)
    assert report.case_delta(0.03, next(i for i in range(len(x)) if i not in {c["index"] for c in flips})) is None
    json.dumps(report.to_json(), allow_nan=False)  # deltas stay out of the JSON


def test_delta_budget_limits_what_is_kept(model_and_data):
    model, x, y = model_and_data
    one = x[0].numel() * 2 / 2**20  # MB of one float16 delta
    report = evaluate_robustness(model, x, y, attack="fgsm", eps=[0.1], probes=False, large_eps=None, delta_budget_mb=2.5 * one)
    flips = report.flipped(0.1)
    assert len(flips) > 2 and sum(c["delta_kept"] for c in flips) == 2
