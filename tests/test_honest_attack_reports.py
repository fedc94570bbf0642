"""Issue 27: attack reports say what they were computed on (n, intervals, every parameter), the
eps-monotonicity check sees slow rises, and the JSON alone replays the attack."""

from __future__ import annotations

import numpy as np

from arfl_studio.evaluation.report import threshold_metrics
from arfl_studio.evaluation.sanity import eps_rise_errors, sanity_checks


def _sweep(rise_per_step: float, steps: int = 6, n: int = 600, seed: int = 0):
    """Logits whose class separation grows by ``rise_per_step`` per eps on the same images."""
    rng = np.random.default_rng(seed)
    t = (rng.random(n) < 0.5).astype(float)
    noise = rng.normal(size=n)
    eps = [0.0] + [0.01 * (k + 1) for k in range(steps)]
    return t, {e: noise + (0.4 + rise_per_step * k) * (2 * t - 1) for k, e in enumerate(eps)}


def _check(t, logits):
    metrics = {e: threshold_metrics(t, z) for e, z in logits.items()}
    return sanity_checks(
        attack="pgd",
        clean=metrics[0.0],
        adversarial={e: m for e, m in metrics.items() if e > 0},
        n=len(t),
        rise_se=eps_rise_errors(t, logits),
    )


def test_a_slow_rise_over_the_sweep_is_flagged_though_no_neighbours_differ_much():
    t, logits = _sweep(0.03)
    aucs = [threshold_metrics(t, logits[e])["auc"] for e in sorted(logits)]
    assert max(np.diff(aucs)) < 0.02 < aucs[-1] - aucs[0]  # each step below the old neighbour tolerance
    names = {w.name: w.message for w in _check(t, logits)}
    assert "auc_rises_with_eps" in names and "paired SE" in names["auc_rises_with_eps"]
    assert "at eps=0 ->" in names["auc_rises_with_eps"]  # compared with the clean AUC, not only a neighbour


def test_a_flat_sweep_within_its_sampling_error_is_not_flagged():
    t, logits = _sweep(0.0)
    rng = np.random.default_rng(1)
    logits = {e: z + 0.02 * rng.normal(size=len(z)) for e, z in logits.items()}  # jitter, no trend
    assert not [w for w in _check(t, logits) if w.name.endswith("rises_with_eps")]


def test_attack_json_records_every_parameter_and_replays_to_the_same_numbers():
    import json

    import torch

    from arfl_studio.atomic import json_text
    from arfl_studio.evaluation import evaluate_robustness
    from arfl_studio.evaluation.report import replay_arguments
    from arfl_studio.evaluation.synthetic import blob_images, train_tiny_cnn

    torch.manual_seed(0)
    x, y = blob_images(48, size=12, seed=1)
    model = train_tiny_cnn(x, y, epochs=3, width=4)
    xt, yt = blob_images(20, size=12, seed=2)
    first = evaluate_robustness(
        model,
        xt,
        yt,
        attack="pgd",
        eps=[0.01, 0.03],
        steps=3,
        probe_queries=15,
        probe_images=8,
        batch_size=8,
        device="cpu",
        seed=3,
        threshold=0.2,
    )
    doc = json.loads(json_text(first.to_json()))  # exactly what --json writes
    used = doc["settings"]["parameters"]["0.03"]
    assert used["step_size"] == 2.5 * 0.03 / 3 and used["restarts"] == 1 and used["random_start"]
    assert doc["settings"]["probe_parameters"]["square"]["queries"] == 15
    assert doc["results"][0]["flipped"] == [] or doc["results"][0]["flipped"][0]["attack_settings"]["parameters"]
    again = evaluate_robustness(model, xt, yt, device="cpu", **replay_arguments(doc)).to_json()
    for key in ("auc", "accuracy", "sensitivity", "specificity", "flipped_count"):
        assert [r[key] for r in again["results"]] == [r[key] for r in doc["results"]], key
    assert again["probes"] == doc["probes"] and again["large_eps_check"] == doc["large_eps_check"]


def test_every_printed_metric_says_its_images_and_the_probe_auc_its_interval():
    import re

    import torch

    from arfl_studio.evaluation import evaluate_robustness
    from arfl_studio.evaluation.report_text import checks_text, summary_text
    from arfl_studio.evaluation.synthetic import blob_images, train_tiny_cnn

    torch.manual_seed(0)
    x, y = blob_images(48, size=12, seed=1)
    model = train_tiny_cnn(x, y, epochs=3, width=4)
    xt, yt = blob_images(24, size=12, seed=2)
    report = evaluate_robustness(model, xt, yt, attack="pgd", eps=[0.02], steps=3, probe_queries=10, probe_images=8, device="cpu")
    doc = report.to_json()
    probe = doc["probes"]["square"][0]
    assert probe["n"] == 8 and probe["n_positive"] + probe["n_negative"] == 8
    lo, hi = probe["auc_ci"]
    assert lo <= probe["auc"] <= hi and hi - lo > 0.1  # 8 images: a wide interval, and it says so
    assert doc["clean"]["n"] == 24 and doc["large_eps_check"]["n"] == 8 and doc["results"][0]["auc_ci"]
    table = report.table()
    assert f"on 24 images ({int(yt.sum())} positive / {24 - int(yt.sum())} negative)" in table
    assert re.search(r"probe square: eps=0.02 AUC \S+ \(95% CI [\d.]+-[\d.]+\) on 8 images \(\d+ pos / \d+ neg\)", table)
    assert "large-eps check" in table and "on 8 images" in table.split("large-eps check")[1]
    assert "95 % CI" in summary_text(doc) and "benign" in summary_text(doc)
    assert doc["warnings"] or "on 8 of 24 images" in checks_text(doc)
