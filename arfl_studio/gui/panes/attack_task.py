"""The attack pane's work, without Qt: the task run in a worker, the model's decision
threshold, what the sanity checks will cost, and how cases moved under attack.

The task calls :func:`arfl_studio.evaluation.robustness.evaluate_robustness` and returns
plain data (the report's JSON plus per-eps movement counts) for the pane to show.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from arfl_studio.gui import run_access

ATTACKS = ("pgd", "fgsm", "pgd-strong", "apgd", "square")
REFERENCE_ATTACKS = ("fgsm", "pgd", "square")  # the sanity checks' probes
DEFAULT_PROBE_QUERIES = 200
LARGE_EPS = 0.3
# Names the core may give the "run the sanity checks on a subset of images" parameter.
_SUBSET_PARAMETERS = ("probe_images", "probe_subset", "sanity_images", "check_images", "probe_samples")


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
    return ["fgsm", "square"]


def checkpoint_path(source: dict) -> Path:
    if source.get("checkpoint"):
        return Path(source["checkpoint"])
    return Path(source["run_dir"]) / source["method"] / f"fold_{source['fold']}" / "model.pt"


def model_threshold(source: dict) -> dict[str, Any]:
    """The decision threshold stored with the model: {"logit", "rule", "note"}.

    A model saved without one is attacked at logit 0 (probability 0.5), and says so.
    """
    path = checkpoint_path(source)
    try:
        from arfl_studio.models.registry import load_threshold
    except ImportError:  # a core without stored thresholds
        load_threshold = None
    if load_threshold is not None:
        stored = load_threshold(path)
        return {"logit": float(stored.logit), "rule": stored.rule, "note": getattr(stored, "note", "")}
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    if isinstance(meta, dict) and isinstance(meta.get("threshold_logit"), (int, float)):
        rule = (meta.get("threshold") or {}).get("rule", "stored") if isinstance(meta.get("threshold"), dict) else "stored"
        return {"logit": float(meta["threshold_logit"]), "rule": rule, "note": ""}
    return {"logit": 0.0, "rule": "none",
            "note": "the model stores no decision threshold: logit 0 (probability 0.5) is used"}


def supported(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def subset_parameter(function) -> str | None:
    return next((n for n in _SUBSET_PARAMETERS if supported(function, n)), None)


def movement(targets: np.ndarray, clean: np.ndarray, adversarial: np.ndarray, threshold: float) -> dict[str, int]:
    """How the attack moved each case's logit relative to its label and the threshold.

    ``flipped``: the decision changed; ``flipped_to_wrong``: a correct decision became
    wrong; ``moved_against_label``: the logit moved toward the wrong class but stayed
    on the same side of the threshold (the attack worked, the decision held).
    """
    targets = np.asarray(targets) > 0.5
    clean, adversarial = np.asarray(clean, float), np.asarray(adversarial, float)
    against = np.where(targets, adversarial < clean - 1e-6, adversarial > clean + 1e-6)
    before, after = clean > threshold, adversarial > threshold
    crossed = before != after
    return {"flipped": int(crossed.sum()),
            "flipped_to_wrong": int((crossed & (after != targets)).sum()),
            "moved_against_label": int((against & ~crossed).sum()),
            "n": int(len(targets))}


def _progress_payload(progress) -> dict:
    if dataclasses.is_dataclass(progress):
        return dataclasses.asdict(progress)
    return {k: getattr(progress, k) for k in ("done", "total", "stage") if hasattr(progress, k)}


def attack_task(source: dict, attack: str, eps: list[float], steps: int, restarts: int, device: str,
                checks: dict | None = None):
    """``checks``: {"probes": [names], "probe_queries": int, "large_eps": bool, "subset": int (0: all)}."""
    checks = dict(checks or {})

    def task(report, cancel):
        from arfl_studio.evaluation.robustness import evaluate_robustness

        threshold = model_threshold(source)
        if source.get("checkpoint"):
            model, spec, records, dataset = run_access.checkpoint_on_records(
                source["checkpoint"], source["records"], source["size"])
        else:
            model, spec, records, dataset = run_access.held_out(source["run_dir"], source["method"], source["fold"])
        report(("progress", {"done": 0, "total": 1, "stage": "loading"}))
        kwargs: dict[str, Any] = {}
        notes = []
        if "probes" in checks:
            kwargs["probes"] = list(checks["probes"]) or False
        if "probe_queries" in checks:
            kwargs["probe_queries"] = int(checks["probe_queries"])
        if "large_eps" in checks:
            kwargs["large_eps"] = LARGE_EPS if checks["large_eps"] else None
        if checks.get("subset"):
            name = subset_parameter(evaluate_robustness)
            if name:
                kwargs[name] = int(checks["subset"])
            else:
                notes.append("this version runs the sanity checks on every image (no subset option yet)")
        result = evaluate_robustness(
            model, dataset, attack=attack, eps=eps, steps=steps, restarts=restarts, records=records,
            threshold=threshold["logit"], device=device, cancel=cancel, batch_size=32,
            callback=lambda p: report(("progress", _progress_payload(p)), lossy=True), **kwargs)
        doc = result.to_json()
        for row in doc["results"]:
            row["movement"] = movement(result.targets, result.clean_logits, result.adversarial_logits[row["eps"]],
                                       result.threshold)
        doc["threshold"] = threshold
        doc["notes"] = notes
        return {"report": doc, "records": records, "source": dict(source, records=None), "cancelled": cancel.is_set()}

    return task
