"""Sanity checks on an attack evaluation (Carlini et al. 2019, "On evaluating
adversarial robustness"; the checks AutoAttack runs). Each failed check is a named
warning; an empty list means none fired — not that the model is robust. Attack
comparisons look at both AUC and accuracy, at every eps.

Names (stable, used in the JSON):

- ``auc_rises_with_eps`` / ``accuracy_rises_with_eps``: the adversarial AUC (accuracy)
  at some eps is higher than at *any* smaller eps (clean included) by more than its
  sampling error (a bigger ball contains the smaller one, so a working attack can only
  do better). Not only neighbours: a slow rise over the whole sweep is caught. The
  sampling error is the paired one on the same images (:func:`eps_rise_errors`: DeLong
  for AUC, paired proportions for accuracy), 1.96 standard errors, never below ``tolerance``.
- ``pgd_weaker_than_fgsm``: the iterative white-box attack left a higher AUC or
  accuracy than one FGSM step at the same eps (steps too few/small, or gradients that
  mislead).
- ``gradient_free_beats_white_box``: the gradient-free Square attack did better (AUC or
  accuracy) than the white-box attack: the gradients are not showing the way.
- ``large_eps_not_broken``: at eps >= 0.5 in [0, 1] pixel space every image can be moved
  to the same mid-grey image (the trivial attack: AUC 0.5, and the accuracy of
  predicting that image's class for all). A gradient attack on a model that does not
  mask its gradients does better: AUC <= ``broken_level`` (0.2; it ranks the classes in
  reverse) and accuracy <= max(``broken_level``, the trivial accuracy). Either stayed
  above there.
- ``zero_input_gradients``: some inputs have an input gradient of the logit that is
  exactly zero everywhere (step functions, quantisation, saturated non-linearities).
- ``sparse_input_gradients``: partial masking — in some inputs more than
  ``sparse_fraction`` (50 %) of the pixels have an exactly-zero input gradient, so a
  sign-gradient attack can move only the few others.
- ``nan_input_gradients`` / ``nan_outputs``: non-finite gradients or logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

CHECK_NAMES = (
    "auc_rises_with_eps",
    "accuracy_rises_with_eps",
    "pgd_weaker_than_fgsm",
    "gradient_free_beats_white_box",
    "large_eps_not_broken",
    "zero_input_gradients",
    "sparse_input_gradients",
    "nan_input_gradients",
    "nan_outputs",
)
METRICS = ("auc", "accuracy")
BROKEN_LEVEL = 0.2  # AUC and accuracy a working attack reaches at eps >= 0.5 (measured: docs/attacks.md)
RISE_Z = 1.959964  # a rise beyond 1.96 paired standard errors (two-sided 95 %) is flagged
SPARSE_FRACTION = 0.5  # healthy ReLU CNNs: ~0 % zero-gradient pixels; the staircase phantom: 85 % (docs/attacks.md)


@dataclass(frozen=True)
class SanityWarning:
    name: str
    message: str
    severity: str = "warning"  # "warning" | "error"

    def to_dict(self) -> dict:
        return asdict(self)


Metrics = Mapping[str, float]


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def _as_metrics(v: Any) -> dict[str, float]:
    return dict(v) if isinstance(v, Mapping) else {"auc": float(v)}


def eps_rise_errors(targets, logits: Mapping[float, Any], threshold: float = 0.0) -> dict[str, dict]:
    """Paired standard errors of metric(e_hi) - metric(e_lo) for every pair of eps in ``logits``.

    ``logits``: {eps: per-image logits on the same images} (eps 0: the clean logits).
    Returns {"auc": {(e_lo, e_hi): se}, "accuracy": {...}}: DeLong's for AUC (None where
    AUC is undefined), that of a difference of paired proportions for accuracy.
    """
    from arfl_studio.evaluation.roc_stats import difference_se

    t = np.asarray(targets) > 0.5
    eps = sorted(logits)
    out: dict[str, dict] = {"auc": {}, "accuracy": {}}
    for i, lo in enumerate(eps):
        for hi in eps[i + 1 :]:
            a, b = np.asarray(logits[lo], dtype=float), np.asarray(logits[hi], dtype=float)
            try:
                out["auc"][(lo, hi)] = difference_se(t, a, b)
            except ValueError:  # one class, or non-finite logits
                out["auc"][(lo, hi)] = None
            d = ((b > threshold) == t).astype(float) - ((a > threshold) == t).astype(float)
            out["accuracy"][(lo, hi)] = float(np.std(d, ddof=1) / np.sqrt(len(d))) if len(d) > 1 else None
    return out


def checks_run(attack: str, probes, members, large_eps: Mapping[str, Any] | None) -> list[str]:
    """Plain sentences naming the checks an evaluation ran (what "no warnings" covers)."""
    from arfl_studio.evaluation.attacks import GRADIENT_FREE, WHITE_BOX

    done = ["AUC and accuracy did not rise with eps", "input gradients are finite and non-zero on most pixels"]
    if "fgsm" in probes and (attack in WHITE_BOX or attack == "worst") and attack != "fgsm":
        done.append(f"{attack} was at least as strong as FGSM")
    if attack == "fgsm" and "pgd" in probes:
        done.append("PGD was at least as strong as FGSM")
    free = [f for f in GRADIENT_FREE if f in probes or f in members]
    if free and attack != "square":
        done.append("the gradient-free Square attack did not beat the white-box attack")
    if attack == "square" and any(b in probes for b in WHITE_BOX):
        done.append("Square did not beat the white-box attacks")
    if large_eps is not None:
        done.append(f"{large_eps.get('attack', attack)} broke the model at eps={large_eps['eps']:g}")
    return done


def sanity_checks(
    *,
    attack: str,
    clean: Metrics | float,
    adversarial: Mapping[float, Metrics | float],
    reference: Mapping[float, Metrics | float] | None = None,
    probes: Mapping[str, Mapping[float, Metrics | float]] | None = None,
    members: Mapping[str, Mapping[float, Metrics | float]] | None = None,
    large_eps: Mapping[str, Any] | None = None,
    gradients: Mapping[str, Any] | None = None,
    nan_outputs: int = 0,
    n: int = 0,
    n_reference: int | None = None,
    tolerance: float = 0.02,
    broken_level: float = BROKEN_LEVEL,
    rise_se: Mapping[str, Mapping[tuple[float, float], float | None]] | None = None,
) -> list[SanityWarning]:
    """Run every check that the given numbers allow.

    Metrics are dicts with ``auc`` and ``accuracy`` (a bare float is an AUC).
    ``adversarial``: {eps: metrics} of the evaluated attack on all n images;
    ``reference``: the same on the probe images (default: ``adversarial``);
    ``probes``: reference attacks ("fgsm", "pgd", "square") -> {eps: metrics} on the probe images;
    ``members``: the ensemble's members (attack ``worst``) -> {eps: metrics} on all images;
    ``large_eps``: {"eps", "auc", "accuracy", "attack"} of the large-eps probe;
    ``gradients``: {"zero_images", "nan_images", "sparse_images", "sparse_fraction"}.
    Accuracy differences of a single image never warn (tolerance max(``tolerance``, 1/n)).
    ``rise_se``: :func:`eps_rise_errors` of the sweep (clean at eps 0); without it a rise
    is flagged beyond ``tolerance``.
    """
    from arfl_studio.evaluation.attacks import GRADIENT_FREE, WHITE_BOX

    adversarial = {e: _as_metrics(v) for e, v in adversarial.items()}
    reference = adversarial if reference is None else {e: _as_metrics(v) for e, v in reference.items()}
    probes = {p: {e: _as_metrics(v) for e, v in r.items()} for p, r in (probes or {}).items()}
    members = {p: {e: _as_metrics(v) for e, v in r.items()} for p, r in (members or {}).items()}
    clean = _as_metrics(clean)
    n_reference = n if n_reference is None else n_reference
    out: list[SanityWarning] = []

    def tol(metric: str, count: int) -> float:
        return max(tolerance, 1.0 / count) if metric == "accuracy" and count else tolerance

    for metric in METRICS:
        curve = sorted((e, m.get(metric, math.nan)) for e, m in adversarial.items())
        if _finite(clean.get(metric)):
            curve = [(0.0, clean[metric])] + [p for p in curve if p[0] > 0]
        errors = (rise_se or {}).get(metric, {})
        rises = []
        for j, (e1, a1) in enumerate(curve):
            # the smaller eps that this one exceeds by the most standard errors (or the most, without errors)
            excess = [
                (a1 - a0 - max(tol(metric, n), RISE_Z * (errors.get((e0, e1)) or 0.0)), e0, a0)
                for e0, a0 in curve[:j]
                if _finite(a0) and _finite(a1)
            ]
            worst = max(excess, default=None)
            if worst is not None and worst[0] > 0:
                se = errors.get((worst[1], e1))
                rises.append(f"{worst[2]:.3f} at eps={worst[1]:g} -> {a1:.3f} at eps={e1:g}" + (f" (paired SE {se:.3f})" if se else ""))
        if rises:
            out.append(
                SanityWarning(
                    f"{metric}_rises_with_eps",
                    f"{attack} adversarial {metric.upper() if metric == 'auc' else metric} is higher at a larger eps "
                    f"than at a smaller one by more than its sampling error ({'; '.join(rises)}); the attack is failing "
                    "to find examples a smaller ball already contained (too few steps, or masked gradients).",
                )
            )

    def compare(name: str, weaker: Mapping[float, Metrics], stronger: Mapping[float, Metrics], text: str) -> None:
        bad = []
        for e in sorted(weaker):
            if e not in stronger:
                continue
            for metric in METRICS:
                w, s = weaker[e].get(metric), stronger[e].get(metric)
                if _finite(w) and _finite(s) and w > s + tol(metric, n_reference):
                    bad.append(f"eps={e:g} {'AUC' if metric == 'auc' else 'accuracy'} {w:.3f} vs {s:.3f}")
        if bad:
            out.append(SanityWarning(name, f"{text} ({'; '.join(bad)}; on {n_reference} images)"))

    white_box_members = [m for m in members if m in WHITE_BOX]
    if attack in WHITE_BOX and attack != "fgsm" and "fgsm" in probes:
        compare(
            "pgd_weaker_than_fgsm", reference, probes["fgsm"], f"{attack} left a higher adversarial AUC or accuracy than single-step FGSM"
        )
    if attack == "worst" and "fgsm" in probes:
        compare(
            "pgd_weaker_than_fgsm",
            reference,
            probes["fgsm"],
            "the worst-case ensemble left a higher adversarial AUC or accuracy than single-step FGSM",
        )
    if attack == "fgsm" and "pgd" in probes:
        compare("pgd_weaker_than_fgsm", probes["pgd"], reference, "PGD left a higher adversarial AUC or accuracy than FGSM")
    for free in GRADIENT_FREE:
        if attack in WHITE_BOX and free in probes:
            compare(
                "gradient_free_beats_white_box",
                reference,
                probes[free],
                f"the gradient-free {free} attack reached a lower AUC or accuracy than white-box {attack}: "
                "the input gradients do not point the way (gradient masking)",
            )
        if free in members and white_box_members:
            best = {e: {m: min(members[w][e].get(m, math.inf) for w in white_box_members) for m in METRICS} for e in members[free]}
            compare(
                "gradient_free_beats_white_box",
                best,
                members[free],
                f"the ensemble's gradient-free {free} member reached a lower AUC or accuracy than its white-box "
                f"members ({', '.join(white_box_members)}): gradient masking",
            )
        if attack == free:
            for box in WHITE_BOX:
                if box in probes:
                    compare(
                        "gradient_free_beats_white_box",
                        probes[box],
                        reference,
                        f"gradient-free {free} reached a lower AUC or accuracy than white-box {box}: gradient masking",
                    )
    if large_eps is not None:
        trivial = large_eps.get("trivial_accuracy")
        limits = {
            "auc": broken_level,
            "accuracy": max(broken_level, trivial + tol("accuracy", large_eps.get("n", n))) if _finite(trivial) else broken_level,
        }
        high = [
            f"{'AUC' if m == 'auc' else 'accuracy'} {large_eps[m]:.3f} (limit {limits[m]:.3f})"
            for m in METRICS
            if _finite(large_eps.get(m)) and large_eps[m] > limits[m]
        ]
        if high:
            out.append(
                SanityWarning(
                    "large_eps_not_broken",
                    f"at eps={large_eps['eps']:g} {large_eps.get('attack', attack)} left {' and '.join(high)}: at that "
                    "radius every image can be turned into the same mid-grey image (AUC 0.5, accuracy "
                    f"{'of that image' if not _finite(trivial) else f'{trivial:.3f}'}) and a working attack ranks the "
                    "classes in reverse, so the attack is not following the model (gradient masking, or too few steps).",
                )
            )
    g = gradients or {}
    if g.get("zero_images"):
        out.append(
            SanityWarning(
                "zero_input_gradients",
                f"{g['zero_images']} of {n} inputs have an input gradient of the logit that is exactly zero: "
                "gradient-based attacks cannot move them (step/quantising layers or saturation: gradient masking).",
            )
        )
    if g.get("sparse_images"):
        frac = g.get("sparse_fraction", SPARSE_FRACTION)
        out.append(
            SanityWarning(
                "sparse_input_gradients",
                f"in {g['sparse_images']} of {n} inputs more than {frac:.0%} of the pixels have an exactly-zero input "
                f"gradient (mean over all inputs {g.get('mean_zero_fraction', math.nan):.1%}): sign-gradient attacks "
                "can move only the few others (partial gradient masking: saturating or quantising layers).",
            )
        )
    if g.get("nan_images"):
        out.append(SanityWarning("nan_input_gradients", f"{g['nan_images']} of {n} inputs have non-finite input gradients.", "error"))
    if nan_outputs:
        out.append(SanityWarning("nan_outputs", f"{nan_outputs} non-finite logits on clean or adversarial inputs.", "error"))
    merged: dict[str, SanityWarning] = {}
    for w in out:  # one warning per name
        prev = merged.get(w.name)
        merged[w.name] = w if prev is None else SanityWarning(w.name, f"{prev.message} Also: {w.message}", prev.severity)
    return list(merged.values())
