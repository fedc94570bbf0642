"""The two-moon results as text: Table 1's layout, with the paper's numbers beside ours."""

from __future__ import annotations

from arfl_studio.experiments.result_tables import mean_std_text


def public(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def _cell(stat: dict | None) -> str:
    return "-" if stat is None else mean_std_text(stat["mean"], stat["std"], scale=1.0)


def format_table(doc: dict) -> str:
    """Table 1's layout (mean ± std per cell), with PGD/worst-case columns and the paper's numbers."""
    worst = any("worst_case_acc" in e for e in doc["rows"])
    head = ["Key", "Training method", "Standard acc", "Adversarial acc (FGSM)", "Mean acc", "PGD acc"]
    if worst:
        head += ["Worst-case acc", "Zero-grad %", "Masking"]
    head += ["Paper std / adv / mean"]
    lines = []
    for e in doc["rows"]:
        cells = [e["key"], e["method"], _cell(e["standard_acc"]), _cell(e["adversarial_acc"]), f"{e['mean_acc']:.1f}", _cell(e["pgd_acc"])]
        if worst:
            flag = e.get("masking_flag")
            cells += [
                _cell(e.get("worst_case_acc")),
                f"{100 * e['zero_grad_fraction']['mean']:.1f}",
                "-" if flag is None else ("FLAGGED" if flag else "ok"),
            ]
        p = e.get("paper")
        cells += [f"{p['standard_acc']['mean']} / {p['adversarial_acc']['mean']} / {p['mean_acc']}" if p else ""]
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [head] + lines) for i in range(len(head))]
    fmt = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths))  # noqa: E731
    out = [fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in lines]
    paired = [e for e in doc["rows"] if "paired" in e]
    if paired:
        out += ["", "Paired per-seed differences against the row without ARFL (mean diff in points; paired t-test p / Wilcoxon p):"]
        metrics = ["standard_acc", "adversarial_acc", "pgd_acc"] + (["worst_case_acc"] if worst else []) + ["mean_acc"]
        labels = {
            "standard_acc": "standard",
            "adversarial_acc": "FGSM",
            "pgd_acc": "PGD",
            "worst_case_acc": "worst-case",
            "mean_acc": "mean",
        }
        for e in paired:
            p = e["paired"]
            parts = [f"{labels[k]} {p[k]['mean_diff']:+.1f} (p={p[k]['t_pvalue']:.3g}/{p[k]['wilcoxon_pvalue']:.3g})" for k in metrics]
            out.append(f"  {e['key']} - {p['base']}: " + "; ".join(parts))
    out.append("")
    settings = doc["settings"]
    out.append(
        f"{len(settings['seeds'])} seeds, {settings['epochs']} epochs, {settings['optimizer']} lr {settings['lr']}, "
        f"batch {settings['batch_size']}, {settings['activation']}; eps_train {settings['eps_train']} (FGSM), "
        f"eps_test {settings['eps_test']}; PGD {settings['pgd_steps']} steps x {settings['pgd_restarts']} restarts"
        + (
            f"; worst case: {settings['grid']}x{settings['grid']} lattice + {settings['refine_top']}x"
            f"{settings['refine']}x{settings['refine']} refinement"
            if worst
            else ""
        )
        + f"; wall {doc['wall_seconds']:.1f} s on {doc['device']}"
    )
    if doc.get("grid_check"):
        worst_change = max(c["max_abs_difference"] for c in doc["grid_check"])
        changed = sum(c["points_changed"] for c in doc["grid_check"])
        out.append(
            f"Grid check: a 2x finer lattice ({doc['grid_check'][0]['finer_grid']} per axis) changes worst-case "
            f"accuracy by at most {100 * worst_change:.2f} points ({changed} point verdicts changed in all models)."
        )
    if doc.get("worst_case_timing"):
        t = doc["worst_case_timing"]
        out.append(
            f"Worst-case search: {t['seconds_per_model']:.2f} s per model of {t['points'] // t['models']} points "
            f"({t['points_per_second']:.0f} points/s, {t['evaluations_per_point']} evaluations per point)."
        )
    return "\n".join(out)
