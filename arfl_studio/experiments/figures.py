"""Publication figures (matplotlib, vector SVG/PDF or PNG), shared by the CLI and the app.

- Figures 4, 6 and 7 of the paper: AUC against r, lambda or eps_1 from a sweep run;
- a run's training curves (classification loss, total loss, validation AUC), every
  fold as mean +/- sample std band per method;
- an attack's ROC curves and its AUC-vs-eps curve, titled with model and fold.

AUC is drawn in percent, as the comparison tables print it. A figure with nothing
to draw is refused with :class:`EmptyFigure`, never written empty.
"""

from __future__ import annotations

import io
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Mapping

from arfl_studio import atomic
from arfl_studio.experiments.results import load_results

KINDS = {"ratio": "mix_ratio", "lambda": "robust_weight", "epsilon": "eps"}
LABELS = {
    "mix_ratio": "mixing ratio r (share of standard data)",
    "robust_weight": "weighting factor \u03bb",
    "eps": "training perturbation budget \u03b5\u2081",
}
FORMATS = ("png", "svg", "pdf")
AUC_LABEL = "AUC (%, per image)"  # validation curves and attack reports score images

# One colour per method (A-I and custom), readable on white; the app's live plots use the same.
METHOD_COLORS = {
    "A": "#1f77b4",
    "B": "#d62728",
    "C": "#2ca02c",
    "D": "#ff7f0e",
    "E": "#9467bd",
    "F": "#8c564b",
    "G": "#e377c2",
    "H": "#7f7f7f",
    "I": "#17becf",
    "custom": "#000000",
}
_EXTRA = ["#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39"]


class EmptyFigure(ValueError):
    """There is nothing to draw yet; the message says what to do first."""


def color_for(key: str) -> str:
    if key in METHOD_COLORS:
        return METHOD_COLORS[key]
    return _EXTRA[sum(map(ord, key)) % len(_EXTRA)]


def sweep_series(results: dict, kind: str) -> dict[tuple, list[dict]]:
    """Sweep points grouped by the values of the other swept axes, sorted along ``kind``'s axis."""
    if kind not in KINDS:
        raise ValueError(f"figure kind must be one of {sorted(KINDS)}, got {kind!r}")
    axis = KINDS[kind]
    points = [m for m in results["methods"] if axis in (m.get("params") or {})]
    if not points:
        raise ValueError(f"this run has no sweep over {axis}; add [sweep] {axis} = [...] to the config")
    series: dict[tuple, list[dict]] = {}
    for m in points:
        rest = tuple(sorted((k, v) for k, v in m["params"].items() if k != axis))
        series.setdefault(rest, []).append(m)
    for group in series.values():
        group.sort(key=lambda m: m["params"][axis])
    return series


def sweep_figure(results, kind: str, path: str | Path, fmt: str | None = None) -> Path:
    """Mean +/- std error bars of standard and adversarial AUC along one swept axis."""
    from matplotlib.figure import Figure

    results = load_results(results)
    path, fmt = _target(path, fmt)
    axis = KINDS[kind]
    series = sweep_series(results, kind)
    fig = Figure(figsize=(5.5, 3.8), dpi=150)
    ax = fig.add_subplot()
    log = axis in ("robust_weight", "eps")
    for index, (rest, group) in enumerate(series.items()):
        xs = [m["params"][axis] for m in group]
        suffix = "" if not rest else " (" + ", ".join(f"{k}={v:g}" for k, v in rest) + ")"
        shift = [x * 1.06 for x in xs] if log else [x + 0.01 for x in xs]  # the paper shifts red bars right
        for metric, xpos, colour, marker in (("standard_auc", xs, "tab:blue", "o"), ("adversarial_auc", shift, "tab:red", "s")):
            ys = [None if m[metric]["mean"] is None else 100 * m[metric]["mean"] for m in group]
            es = [100 * (m[metric]["std"] or 0.0) for m in group]
            keep = [i for i, y in enumerate(ys) if y is not None]
            ax.errorbar(
                [xpos[i] for i in keep],
                [ys[i] for i in keep],
                yerr=[es[i] for i in keep],
                color=colour,
                marker=marker,
                capsize=3,
                alpha=1.0 if index == 0 else 0.6,
                label=("standard AUC" if metric == "standard_auc" else "adversarial AUC") + suffix,
            )
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS[axis])
    unit = (results.get("evaluation") or {}).get("unit", "image")
    ax.set_ylabel(f"AUC (%, per {unit}, mean \u00b1 std over folds)")
    ax.set_title(f"{results.get('name', '')}: {kind} sweep", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path, fmt)


def _target(path: str | Path, fmt: str | None) -> tuple[Path, str]:
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "png").lower()
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, got {fmt!r} ({path})")
    return path, fmt


def _save(fig, path: Path, fmt: str) -> Path:
    """Write atomically; SVG/PDF stay vector (text as paths, no embedded bitmaps) and carry
    the axes' title as the document title."""
    import matplotlib

    title = " / ".join(ax.get_title().replace("\n", " \u2014 ") for ax in fig.axes if ax.get_title())
    metadata = {"Title": title or "ARFL Studio figure"} if fmt in ("svg", "pdf") else None
    if fmt == "pdf":
        metadata["Creator"] = "ARFL Studio"
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "pdf.fonttype": 42}):
        fig.savefig(buffer, format=fmt, bbox_inches="tight", dpi=200 if fmt == "png" else None, metadata=metadata)
    return atomic.write_bytes(path, buffer.getvalue())


def _legend_outside(ax) -> None:
    """The legend right of the axes, never over the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=7, frameon=False)


# ---------------------------------------------------------------------------------------------- training curves
LOSS_KINDS = {"cls": "classification loss L_cls (BCE)", "total": "training objective (total loss)"}


def classification_loss(losses: Mapping[str, float], mix_ratio: float | None = None) -> float:
    """L_cls of one epoch, comparable across methods: the BCE terms without the ARFL/TRADES terms.

    Mixed schemes weigh their clean and adversarial BCE by r and 1 - r (Eq. 4/5); any
    other set of BCE terms (MIRST's levels, TRADES' clean term) is averaged.
    """
    cls = {k: float(v) for k, v in losses.items() if k.startswith("cls")}
    if not cls:
        return float("nan")
    if mix_ratio is not None and set(cls) <= {"cls_clean", "cls_adversarial"} and len(cls) == 2:
        return mix_ratio * cls["cls_clean"] + (1 - mix_ratio) * cls["cls_adversarial"]
    return sum(cls.values()) / len(cls)


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return rows


def training_history(run_dir: str | Path) -> dict[str, dict[str, Any]]:
    """Per method: name, mix ratio and, per fold folder, its epochs' metrics (from metrics.jsonl).

    ``{key: {"name": str, "mix_ratio": float | None, "folds": {"fold_0": [{"epoch", "cls",
    "total", "standard_auc", "adversarial_auc"}, ...]}}}``; seeds count as more folds.
    """
    run_dir = Path(run_dir)
    methods: dict[str, dict] = {}
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        methods = {m["key"]: m for m in config.get("methods", []) if isinstance(m, dict) and "key" in m}
    except (OSError, ValueError, KeyError):
        pass
    history: dict[str, dict[str, Any]] = {}
    keys = list(methods) + sorted(p.name for p in run_dir.iterdir() if p.is_dir() and p.name not in methods) if run_dir.is_dir() else []
    for key in keys:
        method = methods.get(key, {})
        folds = {}
        for metrics in sorted((run_dir / key).glob("**/fold_*/metrics.jsonl")):
            rows = []
            for row in _read_jsonl(metrics):
                losses = row.get("losses") or {}
                rows.append(
                    {
                        "epoch": row.get("epoch"),
                        "cls": classification_loss(losses, method.get("mix_ratio")),
                        "total": losses.get("total", float("nan")),
                        "standard_auc": row.get("standard_auc"),
                        "adversarial_auc": row.get("adversarial_auc"),
                    }
                )
            if rows:
                folds[str(metrics.parent.relative_to(run_dir / key))] = rows
        if folds:
            history[key] = {"name": method.get("name", key), "mix_ratio": method.get("mix_ratio"), "folds": folds}
    return history


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def fold_band(folds: Mapping[str, list[dict]], field: str, scale: float = 1.0):
    """(epochs, mean, sample std, folds per epoch) of ``field`` over the folds that reached each epoch."""
    import numpy as np

    by_epoch: dict[int, list[float]] = {}
    for rows in folds.values():
        for row in rows:
            if _finite(row.get(field)) and row.get("epoch") is not None:
                by_epoch.setdefault(int(row["epoch"]), []).append(scale * float(row[field]))
    epochs = sorted(by_epoch)
    mean = np.array([np.mean(by_epoch[e]) for e in epochs])
    std = np.array([np.std(by_epoch[e], ddof=1) if len(by_epoch[e]) > 1 else 0.0 for e in epochs])
    return np.array(epochs), mean, std, [len(by_epoch[e]) for e in epochs]


TRAINING_KINDS = ("cls", "total", "auc")


def training_figure(
    run_dir: str | Path, kind: str, path: str | Path, fmt: str | None = None, title: str | None = None, history: dict | None = None
) -> Path:
    """One run's curves over epochs: ``kind`` "cls" (L_cls), "total" (the objective) or "auc"
    (validation AUC, standard solid, adversarial dashed); mean +/- std band over all folds."""
    from matplotlib.figure import Figure

    if kind not in TRAINING_KINDS:
        raise ValueError(f"training figure kind must be one of {TRAINING_KINDS}, got {kind!r}")
    path, fmt = _target(path, fmt)
    history = training_history(run_dir) if history is None else history
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    drawn = 0
    n_folds = max((len(h["folds"]) for h in history.values()), default=0)
    series = [("standard_auc", "standard", "-"), ("adversarial_auc", "adversarial", "--")] if kind == "auc" else [(kind, "", "-")]
    for key, h in history.items():
        colour = color_for(key)
        for field, suffix, style in series:
            x, mean, std, counts = fold_band(h["folds"], field, 100.0 if kind == "auc" else 1.0)
            if not len(x):
                continue
            label = f"{key} {h['name']}" + (f" ({suffix})" if suffix else "")
            ax.plot(x, mean, style, color=colour, lw=1.6, marker="o" if len(x) <= 30 else None, ms=3, label=label)
            if max(counts) > 1:
                ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.15, lw=0)
            drawn += 1
    if not drawn:
        raise EmptyFigure("nothing to plot yet: no epoch has finished in this run (train a comparison first)")
    ax.set_xlabel("epoch")
    if kind == "auc":
        ax.set_ylabel(f"validation {AUC_LABEL}")
        ax.set_ylim(0, 100)
    else:
        ax.set_ylabel(LOSS_KINDS[kind] + " (epoch mean)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    what = {
        "cls": "Classification loss L_cls",
        "total": "Total training loss",
        "auc": "Validation AUC (solid: standard, dashed: adversarial)",
    }[kind]
    ax.set_title(title or f"{what}\n{Path(run_dir).name}: mean \u00b1 std over {n_folds} fold(s)", fontsize=9)
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return _save(fig, path, fmt)


# ---------------------------------------------------------------------------------------------- attack curves
def attack_title(report: Mapping[str, Any], model: str = "") -> str:
    settings = report.get("settings") or {}
    steps = f", {settings['steps']} steps" if settings.get("steps") else ""
    return f"{model} \u2014 {str(report.get('attack', '')).upper()}{steps}, n = {report.get('n')}".strip(" \u2014")


def roc_figure(report: Mapping[str, Any], path: str | Path, fmt: str | None = None, model: str = "") -> Path:
    """ROC of the clean and of each eps' adversarial predictions (an attack report's JSON)."""
    from matplotlib.figure import Figure

    path, fmt = _target(path, fmt)
    clean = (report or {}).get("clean") or {}
    if not (clean.get("roc") or {}).get("fpr"):
        raise EmptyFigure("no ROC to plot: run an attack first (it needs benign and malignant images)")
    fig = Figure(figsize=(5.6, 4.2))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ":", color="#999999", lw=1, label="chance")
    ax.plot(clean["roc"]["fpr"], clean["roc"]["tpr"], "-", color="#1f77b4", lw=1.8, label=f"clean, AUC {100 * clean['auc']:.1f} %")
    import matplotlib

    cmap = matplotlib.colormaps["autumn"]
    results = report.get("results") or []
    for i, r in enumerate(results):
        if (r.get("roc") or {}).get("fpr"):
            ax.plot(
                r["roc"]["fpr"],
                r["roc"]["tpr"],
                "--",
                color=cmap(i / max(len(results), 2)),
                lw=1.5,
                label=f"\u03b5 = {r['eps']:g}, AUC {100 * r['auc']:.1f} %",
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 \u2212 specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(f"ROC per image, clean vs adversarial\n{attack_title(report, model)}", fontsize=9)
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    return _save(fig, path, fmt)


def auc_eps_figure(report: Mapping[str, Any], path: str | Path, fmt: str | None = None, model: str = "") -> Path:
    """Adversarial AUC against eps (log axis), the clean AUC as a reference line."""
    from matplotlib.figure import Figure

    path, fmt = _target(path, fmt)
    curve = (report or {}).get("auc_curve") or {}
    points = [(e, a) for e, a in zip(curve.get("eps", []), curve.get("adversarial_auc", [])) if e > 0 and _finite(a)]
    if not points:
        raise EmptyFigure("no AUC-vs-\u03b5 curve to plot: run an attack with \u03b5 > 0 first")
    fig = Figure(figsize=(5.6, 3.8))
    ax = fig.add_subplot()
    xs, ys = [e for e, _ in points], [100 * a for _, a in points]
    ax.plot(xs, ys, "o-", color="#d62728", lw=1.8, label="adversarial")
    clean_auc = (report.get("clean") or {}).get("auc")
    if _finite(clean_auc):
        ax.axhline(100 * clean_auc, color="#1f77b4", ls="--", lw=1.4, label=f"clean ({100 * clean_auc:.1f} %)")
    ax.axhline(50, color="#999999", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_ylim(0, 100)
    ax.set_xlabel("attack budget \u03b5 (pixel scale [0, 1], L\u221e)")
    ax.set_ylabel(AUC_LABEL)
    ax.set_title(f"AUC against \u03b5\n{attack_title(report, model)}", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    _legend_outside(ax)
    return _save(fig, path, fmt)
