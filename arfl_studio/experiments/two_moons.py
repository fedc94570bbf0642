"""The two-moon experiment (paper Table 1, Figure 3) with exact worst-case evaluation.

Setting of the paper: make_moons noise 0.2, 10,000 training / 1,000 test points,
MLP 2-10-10-1, lambda 0.5, FGSM eps_1 = 0.05 for training and eps_2 = 0.2 at test
(no clamping), 5000 epochs, five seeds. Rows (Table 1 lettering): A standard,
B +ARFL, C adversarial (r = 0), D +ARFL, E dual (r = 0.5), F +ARFL, G TRADES,
H MIRST, plus D' and F' with Eq. 5's sign as printed. ARFL rows can also run
with the label-dependent variants of L_robust on post- or pre-activation features
(keys like ``F[signed/post]``).

What the paper leaves open is a setting here (defaults: Adam, lr 1e-3, batch 1000,
ReLU). A seed fixes the make_moons sample, the initialisation and the data order;
every row uses the same three for the same seed, so rows are paired per seed.

Speed: every (row, seed) network of one objective structure trains as one
:class:`TwoMoonMLP` ensemble. Rows of the r-mix scheme that share r, the training
attack and the feature point form one ensemble even when lambda, the Eq. 5 sign or
the L_robust variant differ (:func:`grouped_mix_loss`, equal to each member's own
``compute_loss`` averaged over members); TRADES and MIRST rows use the engine's
``compute_loss`` on their own ensemble. ``naive=True`` trains one network after
another with the engine's ``train`` instead (the benchmark's baseline). The training is in
``two_moons_training``, the text tables in ``two_moons_table``.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np
import torch

from arfl_studio.data.demo.two_moons import two_moons_for_seeds
from arfl_studio.experiments.two_moons_rows import (  # noqa: F401 - re-exported
    BASE_ROWS,
    FEATURE_POINTS,
    OPTIMIZERS,
    PAPER_TABLE1,
    RowSpec,
    TwoMoonSettings,
    build_rows,
)
from arfl_studio.experiments.two_moons_training import (
    Progress,
    TrainedGroup,
    _default_progress,
    train_batched,
    train_naive,
)
from arfl_studio.models.mlp import TwoMoonMLP
from arfl_studio.training import (
    fgsm_attack,
)


def _stats(values: Sequence[float]) -> dict:
    arr = np.asarray(values, dtype=float)
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    return {"mean": round(float(arr.mean()), 6), "std": round(std, 6), "per_seed": [round(float(v), 6) for v in arr]}


def _paired(diff_a: Sequence[float], diff_b: Sequence[float]) -> dict:
    """Paired differences a - b per seed with a paired t-test and a Wilcoxon signed-rank test."""
    from scipy import stats

    a, b = np.asarray(diff_a, float), np.asarray(diff_b, float)
    d = a - b
    t_p = w_p = float("nan")
    if d.size > 1 and np.any(d != 0):
        if np.std(d) > 0:
            t_p = float(stats.ttest_rel(a, b).pvalue)
        else:
            t_p = 0.0
        try:
            w_p = float(stats.wilcoxon(a, b).pvalue)
        except ValueError:
            pass
    return {"mean_diff": float(d.mean()), "per_seed": [float(v) for v in d], "t_pvalue": t_p, "wilcoxon_pvalue": w_p}


def _evaluate_group(s: TwoMoonSettings, g: TrainedGroup, data, device, timings: dict) -> dict:
    """Per member metrics (percent / fractions) for one trained ensemble."""
    from arfl_studio.evaluation.masking import masking_report, zero_gradient_fractions
    from arfl_studio.evaluation.worst_case import grid_convergence

    x = data.x_test[g.member_seed].to(device)
    y = data.y_test[g.member_seed].to(device)
    model = g.model
    out: dict = {}
    if s.worst_case:
        generator = torch.Generator(device=device).manual_seed(12345)
        started = time.perf_counter()
        report = masking_report(
            model,
            x,
            y,
            s.eps_test,
            pgd_steps=s.pgd_steps,
            pgd_restarts=s.pgd_restarts,
            grid=s.grid,
            refine=s.refine,
            refine_top=s.refine_top,
            generator=generator,
        )
        timings["evaluation"] = timings.get("evaluation", 0.0) + time.perf_counter() - started
        timings["worst_case_seconds"] = timings.get("worst_case_seconds", 0.0) + report.worst_case_seconds
        timings["worst_case_points"] = timings.get("worst_case_points", 0) + int(y.numel())
        timings["worst_case_models"] = timings.get("worst_case_models", 0) + int(y.shape[0])
        out = {
            k: getattr(report, k)
            for k in ("clean_acc", "fgsm_acc", "pgd_acc", "worst_case_acc", "zero_grad_fraction", "zero_logit_grad_fraction")
        }
        out["worst_x"] = report.worst_case.x_worst.detach().cpu()
        if s.grid_check:
            check = grid_convergence(model, x, y, s.eps_test, grid=s.grid, refine=s.refine, refine_top=s.refine_top)
            out["grid_check"] = check
    else:
        from arfl_studio.training.attacks import pgd_attack

        with torch.no_grad():
            clean = ((model(x) > 0) == (y > 0.5)).float().mean(-1)
        x_f = fgsm_attack(model, x, y, s.eps_test)
        generator = torch.Generator(device=device).manual_seed(12345)
        x_p = pgd_attack(model, x, y, s.eps_test, steps=s.pgd_steps, restarts=s.pgd_restarts, generator=generator)
        with torch.no_grad():
            fgsm = ((model(x_f) > 0) == (y > 0.5)).float().mean(-1)
            pgd = ((model(x_p) > 0) == (y > 0.5)).float().mean(-1)
        zl, zg = zero_gradient_fractions(model, x, y)
        out = {
            "clean_acc": clean.tolist(),
            "fgsm_acc": fgsm.tolist(),
            "pgd_acc": pgd.tolist(),
            "zero_grad_fraction": zl.tolist(),
            "zero_logit_grad_fraction": zg.tolist(),
        }
    return out


def run_two_moons(
    settings: TwoMoonSettings,
    *,
    naive: bool = False,
    progress: Progress = _default_progress,
    cancel: threading.Event | None = None,
    keep_models: bool = False,
) -> dict:
    """Train and evaluate every selected row for every seed; returns the JSON document."""
    from arfl_studio.training.devices import resolve_device

    s = settings.validate()
    started = time.perf_counter()
    device = resolve_device(s.device)
    rows = build_rows(s)
    data = two_moons_for_seeds(s.seeds, s.n_train, s.n_test, s.noise)
    trainer = train_naive if naive else train_batched
    trained = trainer(s, rows, data, device, progress, cancel)
    train_seconds = time.perf_counter() - started

    timings: dict = {}
    per_row: dict[str, dict[str, list]] = {r.key: {} for r in rows}
    worst_points: dict[str, list] = {r.key: [None] * len(s.seeds) for r in rows}
    grid_checks = []
    eval_started = time.perf_counter()
    for g in trained:
        metrics = _evaluate_group(s, g, data, device, timings)
        for m in range(len(g.member_rows)):
            row = g.rows[int(g.member_rows[m])]
            for name, values in metrics.items():
                if name in ("worst_x", "grid_check"):
                    continue
                per_row[row.key].setdefault(name, [None] * len(s.seeds))[int(g.member_seed[m])] = values[m]
            if "worst_x" in metrics:
                worst_points[row.key][int(g.member_seed[m])] = metrics["worst_x"][m]
        if "grid_check" in metrics:
            c = metrics["grid_check"]
            grid_checks.append(
                {
                    "rows": [r.key for r in g.rows],
                    "grid": c.grid,
                    "finer_grid": c.finer_grid,
                    "max_abs_difference": c.max_abs_difference,
                    "points_changed": c.points_changed,
                }
            )
    eval_seconds = time.perf_counter() - eval_started

    pct = lambda v: [round(100.0 * x, 6) for x in v]  # noqa: E731
    results = []
    for row in rows:
        m = per_row[row.key]
        entry = {
            "key": row.key,
            "method": row.name,
            "features": row.features,
            "settings": row.method.to_dict(),
            "standard_acc": _stats(pct(m["clean_acc"])),
            "adversarial_acc": _stats(pct(m["fgsm_acc"])),
        }
        entry["mean_acc"] = (entry["standard_acc"]["mean"] + entry["adversarial_acc"]["mean"]) / 2
        entry["mean_acc_per_seed"] = [(a + b) / 2 for a, b in zip(entry["standard_acc"]["per_seed"], entry["adversarial_acc"]["per_seed"])]
        entry["pgd_acc"] = _stats(pct(m["pgd_acc"]))
        if "worst_case_acc" in m:
            entry["worst_case_acc"] = _stats(pct(m["worst_case_acc"]))
            gaps = [f - w for f, w in zip(entry["adversarial_acc"]["per_seed"], entry["worst_case_acc"]["per_seed"])]
            entry["fgsm_minus_worst"] = _stats(gaps)
        entry["fgsm_minus_pgd"] = _stats([f - p for f, p in zip(entry["adversarial_acc"]["per_seed"], entry["pgd_acc"]["per_seed"])])
        entry["zero_grad_fraction"] = _stats(m["zero_grad_fraction"])
        entry["zero_logit_grad_fraction"] = _stats(m["zero_logit_grad_fraction"])
        if row.key in PAPER_TABLE1:
            p = PAPER_TABLE1[row.key]
            entry["paper"] = {"standard_acc": {"mean": p[0], "std": p[1]}, "adversarial_acc": {"mean": p[2], "std": p[3]}, "mean_acc": p[4]}
        results.append(entry)

    by_key = {e["key"]: e for e in results}
    # Gradient-masking flags against the undefended baseline (row A).
    baseline = by_key.get("A", {}).get("fgsm_minus_worst")
    for e in results:
        if "fgsm_minus_worst" not in e:
            continue
        if baseline is None:
            e["masking_flag"] = None
            continue
        limit = baseline["mean"] + 100 * s.mask_tolerance
        e["masking_flag"] = bool(e["fgsm_minus_worst"]["mean"] > limit)
        e["masking_flag_seeds"] = [bool(g > limit) for g in e["fgsm_minus_worst"]["per_seed"]]
    # Paired differences against the row without ARFL, same seed.
    for row in rows:
        if row.base_key is None or row.base_key not in by_key:
            continue
        e, b = by_key[row.key], by_key[row.base_key]
        metrics = ["standard_acc", "adversarial_acc", "pgd_acc"] + (["worst_case_acc"] if "worst_case_acc" in e else [])
        paired = {"base": row.base_key}
        for name in metrics:
            paired[name] = _paired(e[name]["per_seed"], b[name]["per_seed"])
        paired["mean_acc"] = _paired(e["mean_acc_per_seed"], b["mean_acc_per_seed"])
        e["paired"] = paired

    wall = time.perf_counter() - started
    doc = {
        "experiment": "two-moons",
        "unit": "accuracy in percent; zero_grad fractions in [0, 1]",
        "naive": naive,
        "settings": s.to_dict(),
        "device": str(device),
        "torch_threads": torch.get_num_threads(),
        "rows": results,
        "groups": [[r.key for r in g.rows] for g in trained] if not naive else None,
        "train_seconds": train_seconds,
        "evaluation_seconds": eval_seconds,
        "wall_seconds": wall,
    }
    if s.worst_case:
        secs, pts = timings.get("worst_case_seconds", 0.0), timings.get("worst_case_points", 0)
        models = max(1, timings.get("worst_case_models", 1))
        doc["worst_case_timing"] = {
            "seconds": secs,
            "points": pts,
            "models": models,
            "seconds_per_model": secs / models,
            "points_per_second": pts / secs if secs > 0 else None,
            "evaluations_per_point": (s.grid**2 + s.refine_top * s.refine**2),
        }
        doc["grid_check"] = grid_checks
        doc["masking_baseline"] = "A" if baseline is not None else None
        doc["masking_tolerance_points"] = 100 * s.mask_tolerance
    if keep_models:
        doc["_trained"] = trained
        doc["_data"] = data
        doc["_worst_points"] = worst_points
    return doc


def model_for_row(doc: dict, key: str, seed_index: int = 0) -> TwoMoonMLP:
    """A single network (row ``key``, ``seed_index``) from a run made with ``keep_models=True``."""
    for g in doc["_trained"]:
        for m in range(len(g.member_rows)):
            if g.rows[int(g.member_rows[m])].key == key and int(g.member_seed[m]) == seed_index:
                return g.model.member(m) if g.model.n_models > 1 else g.model
    raise KeyError(f"row {key!r} seed index {seed_index} was not trained in this run")


def save_models(doc: dict, path) -> None:
    """Every trained ensemble of a ``keep_models=True`` run as plain tensors (loadable with weights_only=True)."""
    from arfl_studio.atomic import save_torch

    groups = []
    for g in doc["_trained"]:
        groups.append(
            {
                "rows": [r.key for r in g.rows],
                "features": g.model.features,
                "member_rows": g.member_rows.clone(),
                "member_seed": g.member_seed.clone(),
                "state_dict": {k: v.detach().cpu().clone() for k, v in g.model.state_dict().items()},
            }
        )
    save_torch(path, {"settings": doc["settings"], "groups": groups})
