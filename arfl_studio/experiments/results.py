"""Merging fold results, the comparison table of Tables 2-3, and the statistics between methods.

``collect(run_dir)`` reads every ``<key>/fold_<k>/manifest.json`` of a run (folds may
have been trained by separate cluster jobs) and writes ``results.json``::

    {"name", "run_dir", "folds", "seeds", "complete", "reference", "evaluation" (attack and AUC unit), "sweep",
     "data": {"split", "split_description", "layout", "label_rule"} (the split and how labels were derived),
     "methods": [{"key", "method", "scheme", "mix_ratio", "robust_weight", "eps", "point", "params",
                  "standard_auc": {"mean", "std", "per_fold", "n"}, "adversarial_auc": {...},
                  "standard_sensitivity", "standard_specificity", "adversarial_sensitivity",
                  "adversarial_specificity": {...} (at each fold model's stored decision threshold),
                  "mean_auc", "folds_finished", "folds_declared", "seeds_declared", "seeds_per_fold", "partial",
                  "oracle_adversarial_auc": {...} (DSBN only, labelled oracle),
                  "pooled_oof": {"standard_auc": {"auc", "lo", "hi", "se", "level", "n", "n_positive",
                                 "n_negative", "folds", ...}, "adversarial_auc": {...}} (one seed; else per seed),
                  "p_values": {"standard_auc": {other: p}, "adversarial_auc": {...}, "mean_auc": {...}},
                  "tests": {metric: {other: {"test", "p", "paired_test", "paired_p", "folds", "n_folds",
                                             "folds_declared", "partial"}}},
                  "delong": {"standard_auc": {other: {"test", "auc", "auc_other", "z", "p", "n", "folds",
                                                      ...}}, "adversarial_auc": {...}}}]}

``std`` is the sample standard deviation over folds (ddof = 1) and ``n`` the number of
folds it is over. ``p_values`` are two-sided Mann-Whitney U tests on the fold AUCs
*both* methods have (``mean_auc`` uses each fold's mean of standard and adversarial
AUC); ``tests`` says so for each, with the paired Wilcoxon test beside it
(:mod:`comparisons`). A method (``partial``) or a test on fewer folds than the run
declares is marked in every table format. Pooled out-of-fold AUCs and the paired
DeLong tests come from each fold's ``predictions.json`` (runs that stored them).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from arfl_studio import atomic
from arfl_studio.experiments.comparisons import (
    fold_comparison,
    fold_predictions,
    paired_delong,
    pooled_auc,
)
from arfl_studio.experiments.config import load_config
from arfl_studio.experiments.run_folder import fold_dir, seed_folders
from arfl_studio.experiments.run_status import update_run_status

FORMATS = ("csv", "xlsx", "md", "tex")
# Rates of each fold model at its own decision threshold (chosen on the training folds, stored in model.json).
RATES = ("standard_sensitivity", "standard_specificity", "adversarial_sensitivity", "adversarial_specificity")
ORACLE_LABEL = "oracle: DSBN adversarial-BN route (knows which inputs are adversarial; not deployable)"


def _summary(values: list[float | None]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    mean = float(np.mean(finite)) if finite else None
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else None
    return {"mean": mean, "std": std, "per_fold": values, "n": len(finite)}


def collect(out_dir: str | Path, write: bool = True) -> dict:
    """Merge the finished folds of a run folder into the results document (and results.json)."""
    out = Path(out_dir)
    config = load_config(out / "config.toml")
    k = config.cv.fold_count
    methods = []
    skipped: list[dict] = []  # fold manifests that are damaged or not ours, with the reason
    seeds = seed_folders(config)
    for run in config.runs():
        method = run["method"]
        # per seed folder, per fold; a fold's figure is the mean over the seeds that finished it
        per_seed = {s: {"standard": [None] * k, "adversarial": [None] * k, "oracle": [None] * k} for _, s in seeds}
        for _, seed in seeds:
            for fold in range(k):
                path = fold_dir(out, run["key"], fold, seed) / "manifest.json"
                manifest = _fold_manifest(path, skipped)
                if manifest is None or manifest.get("status") != "finished":
                    continue
                res = manifest.get("results", {})
                if not isinstance(res, dict):
                    skipped.append({"path": str(path), "reason": "its 'results' is not a JSON object"})
                    continue
                for name, field_name in (
                    ("standard", "standard_auc"),
                    ("adversarial", "adversarial_auc"),
                    ("oracle", "oracle_adversarial_auc"),
                ):
                    per_seed[seed][name][fold] = _nan_to_none(res.get(field_name))
                for name in RATES:  # at the fold model's stored decision threshold (absent in older runs)
                    per_seed[seed].setdefault(name, [None] * k)[fold] = _nan_to_none(res.get(name))
        standard, adversarial, oracle = (
            [_mean_over_seeds(per_seed, name, fold) for fold in range(k)] for name in ("standard", "adversarial", "oracle")
        )
        finished = [
            fold
            for fold in range(k)
            if all(per_seed[s]["standard"][fold] is not None or per_seed[s]["adversarial"][fold] is not None for _, s in seeds)
        ]
        entry: dict[str, Any] = {
            "key": run["key"],
            "method": method.name,
            "scheme": method.scheme,
            "mix_ratio": method.mix_ratio,
            "robust_weight": method.robust_weight,
            "eps": method.attack.eps,
            "point": run["point"],
            "params": run["params"],
            "standard_auc": _summary(standard),
            "adversarial_auc": _summary(adversarial),
            "folds_finished": finished,
        }
        for name in RATES:
            values = [_mean_over_seeds(per_seed, name, fold) for fold in range(k)]
            if any(v is not None for v in values):
                entry[name] = _summary(values)
        if len(seeds) > 1:
            entry["per_seed"] = {
                str(s): {"standard_auc": per_seed[s]["standard"], "adversarial_auc": per_seed[s]["adversarial"]} for _, s in seeds
            }
        s, a = entry["standard_auc"]["mean"], entry["adversarial_auc"]["mean"]
        entry["mean_auc"] = None if s is None or a is None else (s + a) / 2
        entry["_fold_means"] = [None if x is None or y is None else (x + y) / 2 for x, y in zip(standard, adversarial)]
        if any(v is not None for v in oracle):
            entry["oracle_adversarial_auc"] = {**_summary(oracle), "label": ORACLE_LABEL}
        seeds_per_fold = [sum(per_seed[s]["standard"][f] is not None for _, s in seeds) for f in range(k)]
        used = [f for f in range(k) if standard[f] is not None or adversarial[f] is not None]
        entry.update(
            folds_declared=k,
            seeds_declared=len(seeds),
            seeds_per_fold=seeds_per_fold,
            partial=len(used) < k or any(seeds_per_fold[f] < len(seeds) for f in used),
        )
        # per seed folder: fold -> per-image predictions (pooled AUC, paired DeLong tests)
        entry["_predictions"] = {s: fold_predictions(out, run["key"], s, used) for _, s in seeds}
        pooled = {str(s): pooled_auc(p, k) for s, p in entry["_predictions"].items()}
        if len(seeds) == 1:
            entry["pooled_oof"] = next(iter(pooled.values()))
        else:
            entry["pooled_oof_per_seed"] = pooled
        methods.append(entry)
    for entry in methods:
        others = [other for other in methods if other is not entry]
        entry["tests"] = {
            metric: {other["key"]: fold_comparison(_per_fold(entry, metric), _per_fold(other, metric), k) for other in others}
            for metric in ("standard_auc", "adversarial_auc", "mean_auc")
        }
        entry["p_values"] = {metric: {o: t["p"] for o, t in tests.items()} for metric, tests in entry["tests"].items()}
        if len(seeds) == 1:  # images scored once per method: paired DeLong on the same images
            (seed,) = entry["_predictions"]
            pairs = {other["key"]: paired_delong(entry["_predictions"][seed], other["_predictions"][seed], k) for other in others}
            entry["delong"] = {
                metric: {o: t[metric] for o, t in pairs.items() if metric in t} for metric in ("standard_auc", "adversarial_auc")
            }
    for entry in methods:
        entry.pop("_fold_means")
        entry.pop("_predictions")
    keys = [m["key"] for m in methods]
    reference = "F" if "F" in keys else (keys[0] if keys else None)
    results = {
        "name": config.name,
        "run_dir": str(out.resolve()),
        "folds": k,
        "seeds": len(seeds),
        "complete": all(len(m["folds_finished"]) == k for m in methods),
        "reference": reference,
        "evaluation": {
            "kind": config.evaluation.kind,
            "eps": config.evaluation.eps,
            "steps": config.evaluation.steps,
            "restarts": config.evaluation.restarts,
            "unit": config.evaluation.unit,
        },
        "sweep": config.sweep.axes() | {"base": config.sweep.base} if config.sweep.active else None,
        "data": data_facts(out, config),
        "methods": methods,
    }
    if skipped:
        results["skipped_manifests"] = skipped
    if write:
        atomic.write_json(out / "results.json", results)
        update_run_status(out, config)  # only cluster jobs ran: leaves a top-level manifest too
    return results


def data_facts(out: Path, config) -> dict:
    """The split and the label rule the run used, as its splits.json records them (runs made
    before they were recorded: the config's split, and the label rule of the run's manifest)."""
    from arfl_studio.experiments.run_folder import read_json
    from arfl_studio.experiments.splits import split_description

    splits = read_json(out / "splits.json")
    splits = splits if isinstance(splits, dict) else {}
    manifest = read_json(out / "manifest.json")
    scan = ((manifest or {}).get("data") or {}).get("scan") or {} if isinstance(manifest, dict) else {}
    facts = {
        "split": splits.get("split", config.cv.split),
        "split_description": splits.get("split_description") or split_description(config, scan.get("layout"), None),
        "layout": splits.get("layout", scan.get("layout")),
        "label_rule": splits.get("label_rule", scan.get("label_rule")),
    }
    for key in ("patients_in_both_official_sets", "left_out_of_training"):
        if key in splits:
            facts[key] = splits[key]
    return facts


def _mean_over_seeds(per_seed: dict, name: str, fold: int) -> float | None:
    values = [runs[name][fold] for runs in per_seed.values() if name in runs and runs[name][fold] is not None]
    return float(np.mean(values)) if values else None


def _fold_manifest(path: Path, skipped: list[dict]) -> dict | None:
    """A fold's manifest.json, or None (missing: not run yet; damaged: listed in ``skipped``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        skipped.append({"path": str(path), "reason": f"cannot be read: {exc.strerror or exc}"})
        return None
    try:
        manifest = json.loads(text)
    except ValueError as exc:
        skipped.append({"path": str(path), "reason": f"is not valid JSON ({exc})"})
        return None
    if not isinstance(manifest, dict):
        skipped.append({"path": str(path), "reason": f"is not a JSON object (a {type(manifest).__name__})"})
        return None
    return manifest


def _nan_to_none(value):
    """A finite number, else None (NaN, infinities, and anything that is not a number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _per_fold(entry: dict, metric: str) -> list[float | None]:
    return entry["_fold_means"] if metric == "mean_auc" else entry[metric]["per_fold"]


def load_results(path_or_results: str | Path | dict) -> dict:
    """A results document from a dict, a results.json, or a run folder (collected on the fly)."""
    if isinstance(path_or_results, dict):
        return path_or_results
    path = Path(path_or_results)
    if path.is_dir():
        return collect(path, write=True)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is neither a run folder nor a results.json")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); re-create it with: arfl-studio collect RUN_DIR") from exc
    if not isinstance(results, dict) or not isinstance(results.get("methods"), list):
        raise ValueError(
            f"{path} is not a results document (a JSON object with a 'methods' list); re-create it with: arfl-studio collect RUN_DIR"
        )
    return results


# ----------------------------------------------------------------------------------------------
def data_columns(results: dict) -> dict:
    """The split and the label rule as table columns (every row: a CSV row stands alone)."""
    data = results.get("data") or {}
    columns = {"split": data.get("split_description") or data.get("split")}
    if data.get("label_rule"):
        columns["labels"] = data["label_rule"]
    return {k: v for k, v in columns.items() if v}


def comparison_rows(results: dict) -> list[dict]:
    """One row per method: AUCs (fractions), std, mean AUC, the folds (and seeds) they are over,
    p-values against the reference row with the folds each test used; ``partial`` rows and
    ``p_..._partial`` tests are on fewer folds than the run declares."""
    results = load_results(results)
    ref = results.get("reference")
    declared = results.get("folds")
    rows = []
    for m in results["methods"]:
        folds = (
            max(m["standard_auc"].get("n", 0), m["adversarial_auc"].get("n", 0)) if "n" in m["standard_auc"] else len(m["folds_finished"])
        )
        seeds = [c for c in m.get("seeds_per_fold", []) if c]
        row = {
            "key": m["key"],
            "method": m["method"],
            "standard_auc": m["standard_auc"]["mean"],
            "standard_auc_std": m["standard_auc"]["std"],
            "adversarial_auc": m["adversarial_auc"]["mean"],
            "adversarial_auc_std": m["adversarial_auc"]["std"],
            "mean_auc": m["mean_auc"],
            "folds": folds,
            "folds_declared": m.get("folds_declared", declared),
            "seeds_min": min(seeds) if seeds else None,
            "seeds_declared": m.get("seeds_declared", results.get("seeds", 1)),
            "partial": bool(m.get("partial", folds < (declared or 0))),
            **data_columns(results),
        }
        for name in RATES:
            if name in m:
                row[name] = m[name]["mean"]
        for metric, est in (m.get("pooled_oof") or {}).items():
            row.update(
                {
                    f"pooled_{metric}": est["auc"],
                    f"pooled_{metric}_lo": est["lo"],
                    f"pooled_{metric}_hi": est["hi"],
                    f"pooled_{metric}_n": est["n"],
                    f"pooled_{metric}_n_positive": est["n_positive"],
                    f"pooled_{metric}_n_negative": est["n_negative"],
                    f"pooled_{metric}_folds": est["n_folds"],
                    f"pooled_{metric}_partial": est["partial"],
                }
            )
        if ref is not None:
            for metric in ("standard_auc", "adversarial_auc", "mean_auc"):
                test = None if m["key"] == ref else (m.get("tests") or {}).get(metric, {}).get(ref)
                row[f"p_{metric}_vs_{ref}"] = None if m["key"] == ref else m["p_values"][metric].get(ref)
                row[f"p_{metric}_vs_{ref}_folds"] = None if test is None else test["n_folds"]
                row[f"p_{metric}_vs_{ref}_partial"] = None if test is None else test["partial"]
            for metric, test in ((k, v.get(ref)) for k, v in (m.get("delong") or {}).items()):
                if test is not None:
                    row[f"p_delong_{metric}_vs_{ref}"] = test["p"]
                    row[f"p_delong_{metric}_vs_{ref}_partial"] = test["partial"]
        if "oracle_adversarial_auc" in m:
            row["oracle_adversarial_auc"] = m["oracle_adversarial_auc"]["mean"]
        rows.append(row)
    return rows
