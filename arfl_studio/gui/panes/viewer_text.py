"""The viewer's words: the prediction panel and the per-case localisation table (HTML).

Only presentation: the numbers come from ``evaluation.case_analysis`` (predictions,
``localise_case``) and are formatted here.
"""

from __future__ import annotations

import html


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _hit(value) -> str:
    if value is None:
        return "–"
    return "hit" if value >= 1 else "miss" if value <= 0 else f"{100 * value:.0f} % of peaks"


def localisation_html(localisation: dict) -> str:
    """One row per model and input (clean / adversarial): pointing game, saliency energy inside the
    lesions and off the breast, with the chance levels beside them. Empty when there is nothing."""
    if not localisation:
        return ""
    first = next(iter(next(iter(localisation.values())).values()))
    tolerance = first.get("tolerance_mm", 5.0)
    head = "<tr><th>Model</th><th>Input</th><th>Pointing</th><th>In lesions</th><th>Chance</th><th>Off breast</th></tr>"
    rows = []
    for name, sides in localisation.items():
        for side, r in sides.items():
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{side}</td><td>{_hit(r['pointing'])}</td>"
                f"<td>{_pct(r['energy_inside'])}</td><td>{_pct(r['chance'])}</td>"
                f"<td>{_pct(r['energy_off_breast'])}</td></tr>"
            )
    return (
        f"<br><b>Where the saliency map looks</b> (lesion marks; pointing within {tolerance:g} mm, "
        f"chance of a peak placed at random {_pct(first['chance_pointing'])}):"
        f"<table cellspacing='0' cellpadding='2' border='1'>{head}{''.join(rows)}</table>"
    )


def localisation_caption(localisation: dict, model: str | None) -> str:
    """One line under a view: the clean map's pointing and energy in the lesions against chance."""
    r = (localisation or {}).get(model or "", {}).get("clean")
    if r is None:
        return ""
    return f"map: {_hit(r['pointing'])}, {_pct(r['energy_inside'])} in lesions (chance {_pct(r['chance'])})"


def view_caption(image: dict | None, model: str | None) -> str:
    """Under a view: the model's P(malignant) clean and adversarial and where its map looks; or why
    the view is empty."""
    if image is None:
        return "(no image)"
    if "error" in image:
        return f"Could not show this view: {image['error']}"
    m = (image.get("models") or {}).get(model) if model else None
    if m is None:
        return ""
    where = localisation_caption(image.get("localisation"), model)
    return f"P(malignant): clean {m['clean_prob']:.3f}, adversarial {m['adversarial_prob']:.3f}" + (f"; {where}" if where else "")


def prediction_text(result: dict) -> str:
    """The case: truth, attack, each model's P(malignant) clean → adversarial and verdict at its stored
    threshold, and the localisation table when the case has lesion marks."""
    record = result["record"]
    truth = "malignant" if result["target"] > 0.5 else "benign"
    lines = [
        f"<b>{html.escape(str(record.patient_id))} {record.laterality or ''}{record.view or ''}</b> — "
        f"truth: {truth}<br>attack {result['attack']}, ε = {result['eps']:g}"
    ]
    for name, m in result["case"]["models"].items():
        threshold = (result.get("thresholds") or {}).get(name)
        verdict = ""
        if threshold is not None:
            t = threshold["prob"]
            call = lambda p: "malignant" if p > t else "benign"  # noqa: E731
            verdict = (
                f" — {call(m['clean_prob'])} → {call(m['adversarial_prob'])} at the stored threshold P = {t:.3f} ({threshold['rule']})"
            )
        lines.append(
            f"<b>{name}</b>: P(malignant) clean {m['clean_prob']:.3f} → adversarial "
            f"{m['adversarial_prob']:.3f}{verdict}; {m['delta_source']}"
        )
    return "<br>".join(lines) + localisation_html(result["case"].get("localisation") or {})
