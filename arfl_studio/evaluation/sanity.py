"""Sanity checks on an attack evaluation (Carlini et al. 2019, "On evaluating
adversarial robustness"; the checks AutoAttack runs). Each failed check is a named
warning; an empty list means none fired — not that the model is robust.

Names (stable, used in the JSON):

- ``auc_rises_with_eps``: the adversarial AUC rose as eps grew (a bigger ball contains
  the smaller one, so a working attack can only do better).
- ``pgd_weaker_than_fgsm``: the iterative white-box attack left a higher AUC than
  one FGSM step at the same eps (steps too few/small, or gradients that mislead).
- ``gradient_free_beats_white_box``: the gradient-free Square attack did better than
  the white-box attack: the gradients are not showing the way (gradient masking).
- ``large_eps_not_broken``: at a large eps, where any image can be made to look like
  any other, the adversarial AUC stayed well above chance.
- ``zero_input_gradients``: some inputs have an input gradient of the logit that is
  exactly zero (step functions, quantisation, saturated non-linearities).
- ``nan_input_gradients`` / ``nan_outputs``: non-finite gradients or logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

CHECK_NAMES = (
    "auc_rises_with_eps", "pgd_weaker_than_fgsm", "gradient_free_beats_white_box",
    "large_eps_not_broken", "zero_input_gradients", "nan_input_gradients", "nan_outputs",
)


@dataclass(frozen=True)
class SanityWarning:
    name: str
    message: str
    severity: str = "warning"  # "warning" | "error"

    def to_dict(self) -> dict:
        return asdict(self)


def _finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def sanity_checks(
    *,
    attack: str,
    clean_auc: float,
    eps: Sequence[float],
    adversarial_auc: Sequence[float],
    probes: Mapping[str, Mapping[float, float]] | None = None,
    large_eps: tuple[float, float] | None = None,
    zero_gradients: int = 0,
    nan_gradients: int = 0,
    nan_outputs: int = 0,
    n: int = 0,
    tolerance: float = 0.02,
    chance_margin: float = 0.1,
) -> list[SanityWarning]:
    """Run every check that the given numbers allow.

    ``probes`` maps a reference attack ("fgsm", "pgd", "square") to {eps: AUC};
    ``large_eps`` is (eps, AUC of the evaluated attack there).
    """
    from arfl_studio.evaluation.attacks import GRADIENT_FREE, WHITE_BOX

    probes = probes or {}
    out: list[SanityWarning] = []
    curve = sorted(zip(eps, adversarial_auc))
    if _finite(clean_auc):
        curve = [(0.0, clean_auc)] + [p for p in curve if p[0] > 0]
    rises = []
    for (e0, a0), (e1, a1) in zip(curve, curve[1:]):
        if _finite(a0) and _finite(a1) and a1 > a0 + tolerance:
            rises.append(f"{a0:.3f} at eps={e0:g} -> {a1:.3f} at eps={e1:g}")
    if rises:
        out.append(SanityWarning(
            "auc_rises_with_eps",
            f"{attack} adversarial AUC rose with eps ({'; '.join(rises)}); the attack is failing to "
            "find examples a smaller ball already contained (too few steps, or masked gradients).",
        ))

    main = dict(zip(eps, adversarial_auc))

    def compare(name: str, weaker: Mapping[float, float], stronger: Mapping[float, float], text: str) -> None:
        bad = [f"eps={e:g}: {weaker[e]:.3f} vs {stronger[e]:.3f}" for e in sorted(weaker)
               if e in stronger and _finite(weaker[e]) and _finite(stronger[e]) and weaker[e] > stronger[e] + tolerance]
        if bad:
            out.append(SanityWarning(name, f"{text} ({'; '.join(bad)})"))

    if attack in WHITE_BOX and attack != "fgsm" and "fgsm" in probes:
        compare("pgd_weaker_than_fgsm", main, probes["fgsm"],
                f"{attack} left a higher adversarial AUC than single-step FGSM")
    if attack == "fgsm" and "pgd" in probes:
        compare("pgd_weaker_than_fgsm", probes["pgd"], main, "PGD left a higher adversarial AUC than FGSM")
    for free in GRADIENT_FREE:
        if attack in WHITE_BOX and free in probes:
            compare("gradient_free_beats_white_box", main, probes[free],
                    f"the gradient-free {free} attack reached a lower AUC than white-box {attack}: "
                    "the input gradients do not point the way (gradient masking)")
        if attack == free:
            for box in WHITE_BOX:
                if box in probes:
                    compare("gradient_free_beats_white_box", probes[box], main,
                            f"gradient-free {free} reached a lower AUC than white-box {box}: gradient masking")
    if large_eps is not None and _finite(large_eps[1]) and large_eps[1] > 0.5 + chance_margin:
        out.append(SanityWarning(
            "large_eps_not_broken",
            f"at eps={large_eps[0]:g} the {attack} adversarial AUC is {large_eps[1]:.3f}, not near or below "
            f"chance (0.5): at that radius any image can be turned into another, so the attack is not working.",
        ))
    if zero_gradients:
        out.append(SanityWarning(
            "zero_input_gradients",
            f"{zero_gradients} of {n} inputs have an input gradient of the logit that is exactly zero: "
            "gradient-based attacks cannot move them (step/quantising layers or saturation: gradient masking).",
        ))
    if nan_gradients:
        out.append(SanityWarning(
            "nan_input_gradients", f"{nan_gradients} of {n} inputs have non-finite input gradients.", "error"))
    if nan_outputs:
        out.append(SanityWarning("nan_outputs", f"{nan_outputs} non-finite logits on clean or adversarial inputs.", "error"))
    merged: dict[str, SanityWarning] = {}
    for w in out:  # one warning per name
        prev = merged.get(w.name)
        merged[w.name] = w if prev is None else SanityWarning(w.name, f"{prev.message} Also: {w.message}", prev.severity)
    return list(merged.values())
