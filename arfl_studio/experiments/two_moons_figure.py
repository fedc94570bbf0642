"""Paper Figure 3: decision boundaries of dual adversarial training without / with ARFL.

A 2 x 2 grid: rows are the two models (row E and row F of Table 1, one seed),
columns 50 randomly chosen clean test points and the same 50 points after the
FGSM attack at eps_2. Optionally each plotted clean point is joined to the
worst-case point found by the exact search (a cross where the worst case is
misclassified). Matplotlib with the Agg backend: no screen, no Qt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMATS = (".png", ".svg", ".pdf")


def plot_decision_boundaries(panels, x_test, y_test, eps, path, *, n_points=50, seed=0, worst_case=None, title=None):
    """``panels``: list of (label, single-network model); ``worst_case``: list of (N, 2) worst points per panel or None.

    Writes ``path`` (PNG, SVG or PDF by suffix) and returns it.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from arfl_studio.atomic import write_bytes
    from arfl_studio.training import fgsm_attack
    from arfl_studio.training.attacks import attack_mode

    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"figure format must be one of {FORMATS}, got {path.suffix!r}")
    x_test, y_test = torch.as_tensor(x_test).float(), torch.as_tensor(y_test).float()
    rng = np.random.default_rng(seed)
    pick = torch.as_tensor(rng.choice(len(x_test), size=min(n_points, len(x_test)), replace=False))
    xs, ys = x_test[pick], y_test[pick]
    lo, hi = x_test.min(0).values - 0.5, x_test.max(0).values + 0.5
    gx, gy = torch.meshgrid(torch.linspace(lo[0], hi[0], 300), torch.linspace(lo[1], hi[1], 300), indexing="xy")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], -1)
    fig, axes = plt.subplots(len(panels), 2, figsize=(9, 4.2 * len(panels)), squeeze=False)
    for r, (label, model) in enumerate(panels):
        with torch.no_grad(), attack_mode(model):
            z = model(grid).reshape(gx.shape)
        x_adv = fgsm_attack(model, xs, ys, eps)
        with torch.no_grad(), attack_mode(model):
            wrong_clean = ((model(xs) > 0).float() != ys).numpy()
            wrong_adv = ((model(x_adv) > 0).float() != ys).numpy()
        for c, (pts, wrong, kind) in enumerate([(xs, wrong_clean, "standard"), (x_adv, wrong_adv, f"FGSM eps={eps:g}")]):
            ax = axes[r][c]
            # numpy, not tensors: matplotlib < 3.9 cannot take a tensor grid for contour plots
            ax.contourf(gx.numpy(), gy.numpy(), (z > 0).float().numpy(), levels=[-0.5, 0.5, 1.5], colors=["#f6d5c4", "#c9dcf0"], alpha=0.8)
            ax.contour(gx.numpy(), gy.numpy(), z.numpy(), levels=[0.0], colors="k", linewidths=1.2)
            for cls, colour in ((0, "#c0392b"), (1, "#1f5fa8")):
                sel = ys.numpy() == cls
                ax.scatter(pts[sel, 0], pts[sel, 1], c=colour, s=22, edgecolors="k", linewidths=0.4, label=f"class {cls}")
            ax.scatter(pts[wrong > 0, 0], pts[wrong > 0, 1], facecolors="none", edgecolors="k", s=90, linewidths=1.2, label="misclassified")
            if worst_case is not None and worst_case[r] is not None and c == 0:
                w = torch.as_tensor(worst_case[r])[pick]
                with torch.no_grad(), attack_mode(model):
                    w_wrong = ((model(w) > 0).float() != ys).numpy() > 0
                for p, q in zip(xs, w):
                    ax.plot([p[0], q[0]], [p[1], q[1]], color="0.3", lw=0.6)
                ax.scatter(w[~w_wrong, 0], w[~w_wrong, 1], marker=".", c="0.3", s=14, label="worst case (still right)")
                ax.scatter(w[w_wrong, 0], w[w_wrong, 1], marker="x", c="k", s=26, label="worst case (wrong)")
            ax.set_title(f"{label}\n{kind} test points ({int(wrong.sum())}/{len(pts)} wrong)", fontsize=9)
            ax.set_xlim(lo[0], hi[0])
            ax.set_ylim(lo[1], hi[1])
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=150)
    plt.close(fig)
    return write_bytes(path, buffer.getvalue())


def figure_from_run(doc: dict, path, *, seed_index: int = 0, n_points: int = 50, mark_worst_case: bool = True):
    """Figure 3 from a run made with ``keep_models=True`` (needs rows E and F)."""
    from arfl_studio.experiments.two_moons import model_for_row

    data, eps = doc["_data"], doc["settings"]["eps_test"]
    panels = []
    worst: list[Any] = []
    for key, label in (("E", "E. Dual adversarial training"), ("F", "F. Dual adversarial training + ARFL")):
        panels.append((f"{label} (seed {doc['settings']['seeds'][seed_index]})", model_for_row(doc, key, seed_index)))
        w = doc.get("_worst_points", {}).get(key, [None])[seed_index] if mark_worst_case else None
        worst.append(w)
    return plot_decision_boundaries(
        panels,
        data.x_test[seed_index],
        data.y_test[seed_index],
        eps,
        path,
        n_points=n_points,
        seed=seed_index,
        worst_case=None if all(w is None for w in worst) else worst,
    )
