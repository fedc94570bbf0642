"""The attack pane's work, without Qt: the task run in a worker, the model's decision
threshold and the sanity checks' settings.

The task calls :func:`arfl_studio.evaluation.robustness.evaluate_robustness` (which polls
Stop after every attack step and reports each step by name) and returns plain data (the
report's JSON, the threshold it used, the flipped cases' δ) for the pane to show.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from arfl_studio.evaluation.attacks import ATTACKS as CORE_ATTACKS
from arfl_studio.evaluation.robustness import LARGE_EPS, PROBE_QUERIES as DEFAULT_PROBE_QUERIES  # noqa: F401
from arfl_studio.experiments import run_access

ATTACKS = ("pgd",) + tuple(a for a in CORE_ATTACKS if a != "pgd")  # PGD first: the paper's test attack
REFERENCE_ATTACKS = ("fgsm", "pgd", "square")  # the sanity checks' probes


def parse_eps(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError as exc:
        raise ValueError(f"ε must be numbers separated by commas, got {text!r}") from exc
    if not values or any(v < 0 for v in values):
        raise ValueError(f"ε must be one or more values >= 0, got {text!r}")
    return sorted(set(values))


def default_probes(attack: str) -> list[str]:
    """The reference attacks the core runs by default next to ``attack``."""
    if attack == "fgsm":
        return ["pgd", "square"]
    if attack == "square":
        return ["fgsm", "pgd"]
    if attack == "worst":
        return ["fgsm"]  # Square is one of its members already
    return ["fgsm", "square"]


def model_threshold(source: dict) -> dict[str, Any]:
    """The decision threshold stored with the model (:class:`DecisionThreshold` as a dict:
    logit, rule, target, training sensitivity/specificity, note). A model saved without
    one is attacked at logit 0 (probability 0.5), and its note says so."""
    if source.get("checkpoint"):
        from arfl_studio.models.registry import load_threshold

        return load_threshold(source["checkpoint"]).to_dict()
    return run_access.load_fold_threshold(source["run_dir"], source["method"], int(source["fold"]), source.get("seed")).to_dict()


def _progress_payload(progress) -> dict:
    if dataclasses.is_dataclass(progress) and not isinstance(progress, type):
        return dataclasses.asdict(progress)
    return {k: getattr(progress, k) for k in ("done", "total", "stage", "message", "eta_s") if hasattr(progress, k)}


def attack_task(source: dict, attack: str, eps: list[float], steps: int, restarts: int, device: str, checks: dict | None = None):
    """``checks``: {"probes": [names], "probe_queries": int, "large_eps": bool, "subset": int (0: all images)}."""
    checks = dict(checks or {})

    def task(report, cancel):
        from arfl_studio.evaluation.robustness import evaluate_robustness

        threshold = model_threshold(source)
        if source.get("checkpoint"):
            model, spec, records, dataset = run_access.checkpoint_on_records(source["checkpoint"], source["records"], source["size"])
        else:
            model, spec, records, dataset = run_access.held_out(
                source["run_dir"], source["method"], int(source["fold"]), source.get("seed")
            )
        report(("progress", {"done": 0, "total": 1, "stage": "loading"}))
        kwargs: dict[str, Any] = {}
        if "probes" in checks:
            kwargs["probes"] = list(checks["probes"]) or False
        if "probe_queries" in checks:
            kwargs["probe_queries"] = int(checks["probe_queries"])
        if "large_eps" in checks:
            kwargs["large_eps"] = LARGE_EPS if checks["large_eps"] else None
        if checks.get("subset"):
            kwargs["probe_images"] = int(checks["subset"])
        else:  # the pane chose "every image" and estimated that cost (its plan text): the full set
            kwargs["sanity_budget"] = None
        result = evaluate_robustness(
            model,
            dataset,
            attack=attack,
            eps=eps,
            steps=steps,
            restarts=restarts,
            records=records,
            threshold=threshold["logit"],
            device=device,
            cancel=cancel,
            batch_size=32,
            callback=lambda p: report(("progress", _progress_payload(p)), lossy=True),
            **kwargs,
        )
        doc = result.to_json()
        doc["threshold"] = threshold
        # the flipped cases' own δ (not in the JSON): the viewer shows exactly these adversarial inputs
        return {
            "report": doc,
            "records": records,
            "source": dict(source, records=None),
            "cancelled": cancel.is_set(),
            "deltas": dict(result.deltas),
        }

    return task
