"""An attack report in words: the threshold, the summary table, the sanity checks and why
the flip table holds what it holds (HTML for the attack pane's labels; no Qt)."""

from __future__ import annotations

import math


def pct(value) -> str:
    return "–" if value is None or value != value else f"{100 * value:.1f} %"


def threshold_text(report: dict) -> str:
    th = report.get("threshold") or {}
    logit = report.get("threshold_logit", th.get("logit", 0.0))
    prob = report.get("threshold_prob", 1 / (1 + math.exp(-logit)))
    rule = th.get("rule", "none")
    target = f" {th['target']:g}" if th.get("target") is not None else ""
    how = {
        "none": "default: the model stores no threshold",
        "youden": "Youden's J on the training folds",
        "sensitivity": f"target sensitivity{target} on the training folds",
        "specificity": f"target specificity{target} on the training folds",
        "logit": "fixed",
    }.get(rule, rule)
    return f"logit {logit:+.3g} (P(malignant) > {prob:.2f}; {how})"


def auc_ci_text(metrics: dict) -> str:
    """'81.2 % (95 % CI 74.0–88.4)', or the AUC alone where no interval was stored."""
    ci = metrics.get("auc_ci")
    return pct(metrics.get("auc")) + (f" (95 % CI {100 * ci[0]:.1f}–{100 * ci[1]:.1f})" if ci else "")


def summary_text(report: dict) -> str:
    clean = report["clean"]
    negatives = report.get("n_negative", report["n"] - report["n_positive"])
    lines = [
        f"<b>{report['attack']}</b> on {report['n']} held-out images ({report['n_positive']} malignant, "
        f"{negatives} benign); AUC with its 95 % DeLong interval.",
        f"Decision threshold: {threshold_text(report)}.",
        f"<table cellspacing=4><tr><th align=left>ε</th><th>AUC</th><th>sensitivity</th><th>specificity</th>"
        f"<th>flipped</th></tr><tr><td>clean</td><td>{auc_ci_text(clean)}</td>"
        f"<td>{pct(clean.get('sensitivity'))}</td><td>{pct(clean.get('specificity'))}</td><td></td></tr>",
    ]
    for r in report["results"]:
        lines[-1] += (
            f"<tr><td>{r['eps']:g}</td><td>{auc_ci_text(r)}</td><td>{pct(r.get('sensitivity'))}</td>"
            f"<td>{pct(r.get('specificity'))}</td><td align=center>{r['flipped_count']}</td></tr>"
        )
    lines[-1] += "</table>"
    if report.get("auc_note"):
        lines.append(f"<i>{report['auc_note']}</i>")
    note = (report.get("threshold") or {}).get("note")
    if note:
        lines.append(f"<i>{note}</i>")
    return "<br>".join(lines)


def checks_text(report: dict) -> str:
    warnings = report.get("warnings", [])
    if warnings:
        items = "".join(f"<li><b>{w.get('name', '')}</b>: {w.get('message', '')}</li>" for w in warnings)
        return (
            f"<span style='color:#b00000'><b>⚠ Sanity checks failed — the numbers above may "
            f"overstate robustness:</b></span><ul>{items}</ul>"
        )
    settings = report.get("settings") or {}
    ran = []
    probes = settings.get("probes") or []
    if probes:
        probed = report.get("probe_images") or report["n"]
        ran.append(f"{report['attack']} did at least as well as {', '.join(probes)} (on {probed} of {report['n']} images)")
    ran.append("the AUC did not rise with ε beyond its sampling error")
    large = report.get("large_eps_check") or {}
    if large.get("auc") is not None:
        on = f" on {large['n']} images ({large.get('n_positive', '?')} malignant)" if large.get("n") else ""
        ran.append(f"at ε = {large['eps']:g} the attack brought the AUC to {auc_ci_text(large)}{on}")
    ran.append("the input gradients are non-zero and finite")
    return (
        "<span style='color:#006000'>✔ Sanity checks passed: "
        + "; ".join(ran)
        + ".</span> <span style='color:#555'>(No check proves robustness.)</span>"
    )


def flip_note_text(report: dict, result: dict) -> str:
    """Why the table holds what it holds: the threshold, near-misses, a one-class model."""
    text = f"A case flips when its logit crosses the decision threshold, {threshold_text(report)}. "
    n, eps = report.get("n", 0), result["eps"]
    if result.get("flipped_count"):
        text += f"{result['flipped_count']} of {n} flipped at ε = {eps:g}. "
        if result.get("moved_against_label") is not None:
            text += f"Another {result['moved_against_label']} moved toward the wrong class without crossing it. "
    else:
        reason = result.get("empty_reason") or "no prediction crossed the threshold"
        text += f"<b>The table is empty at ε = {eps:g}:</b> {reason}. "
    text += "(The AUC ranks scores, so it can fall without any flip.)"
    clean = report.get("clean") or {}
    if clean.get("sensitivity") == 0:
        text += " <b>At this threshold the model calls every image benign (sensitivity 0 %).</b>"
    elif clean.get("specificity") == 0:
        text += " <b>At this threshold the model calls every image malignant (specificity 0 %).</b>"
    return text
