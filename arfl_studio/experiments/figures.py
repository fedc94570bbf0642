"""Figures 4, 6 and 7 of the paper: AUC against r, lambda or eps_1 from a sweep run (matplotlib, Agg)."""

from __future__ import annotations

import io
from pathlib import Path

from arfl_studio import atomic
from arfl_studio.experiments.results import load_results

KINDS = {"ratio": "mix_ratio", "lambda": "robust_weight", "epsilon": "eps"}
LABELS = {"mix_ratio": "mixing ratio r (share of standard data)", "robust_weight": "weighting factor \u03bb",
          "eps": "training perturbation budget \u03b5\u2081"}
FORMATS = ("png", "svg", "pdf")


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
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    results = load_results(results)
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower() or "png"
    if fmt not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, got {fmt!r}")
    axis = KINDS[kind]
    series = sweep_series(results, kind)
    fig = Figure(figsize=(5.5, 3.8), dpi=150)
    ax = fig.add_subplot()
    log = axis in ("robust_weight", "eps")
    for index, (rest, group) in enumerate(series.items()):
        xs = [m["params"][axis] for m in group]
        suffix = "" if not rest else " (" + ", ".join(f"{k}={v:g}" for k, v in rest) + ")"
        shift = [x * 1.06 for x in xs] if log else [x + 0.01 for x in xs]  # the paper shifts red bars right
        for metric, xpos, colour, marker in (("standard_auc", xs, "tab:blue", "o"),
                                             ("adversarial_auc", shift, "tab:red", "s")):
            ys = [m[metric]["mean"] for m in group]
            es = [m[metric]["std"] or 0.0 for m in group]
            keep = [i for i, y in enumerate(ys) if y is not None]
            ax.errorbar([xpos[i] for i in keep], [ys[i] for i in keep], yerr=[es[i] for i in keep],
                        color=colour, marker=marker, capsize=3, alpha=1.0 if index == 0 else 0.6,
                        label=("standard AUC" if metric == "standard_auc" else "adversarial AUC") + suffix)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(LABELS[axis])
    ax.set_ylabel("AUC (mean \u00b1 std over folds)")
    ax.set_title(f"{results.get('name', '')}: {kind} sweep", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return atomic.write_bytes(path, buffer.getvalue())
