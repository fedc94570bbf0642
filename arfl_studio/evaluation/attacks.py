"""Evaluation attacks on single-logit binary classifiers, beyond the engine's FGSM/PGD.

All attacks are untargeted, L-infinity, in the model's input space (pixels in [0, 1]
for mammograms, ``clamp=(0, 1)``), with the model in eval mode while they run
(:func:`arfl_studio.training.attacks.attack_mode`), and take gradients with respect
to the input only.

For one logit z, a label y in {0, 1} and a decision threshold t (a logit, 0 by
default) the per-sample *margin* is ``-(2y - 1) * (z - t)``: it is positive exactly
when the prediction at the threshold is wrong. BCE is a monotone function of it, so
the sign of its input gradient is BCE's, but it never underflows to zero for very
confident predictions (BCE's gradient ``sigmoid(z) - y`` rounds to 0 in float32 once
|z| > ~17). Every attack here ascends the margin unless told otherwise.

- ``fgsm`` / ``pgd``: the engine's attacks (margin objective, as in training).
- ``pgd-strong``: the engine's PGD with many steps and several random restarts; each
  sample keeps the restart with the highest margin.
- ``apgd``: Auto-PGD (Croce & Hein 2020) — momentum 0.75, a step size that starts at
  2 eps and halves at checkpoints when progress stalls, restarts from the best point;
  margin loss by default (``loss="ce"`` is AutoAttack's APGD-CE, which stalls on
  confident samples; ``"both"`` runs both and keeps each sample's worse case).
- ``square``: the gradient-free Square Attack (Andriushchenko et al. 2020), L-inf,
  batched, with a query budget; a probe for gradient masking.
- ``worst``: the ensemble pgd-strong + apgd (margin) + square, keeping each sample's
  largest margin. Unlike AutoAttack it does not stop at the first misclassification:
  AUC depends on how far every score moves. Square's budget: ``queries`` (default
  1,000) on every image, then a second run of at least AutoAttack's 5,000
  (:data:`AUTOATTACK_SQUARE_QUERIES`) on the images still unbroken, where masked
  gradients leave only the gradient-free member to find the way; broken images drop
  out of the long run, so the cost stays close to the short one on unmasked models. Decreasing positives' and raising
  negatives' scores can only lower AUC and accuracy, so the ensemble is never weaker
  than any member, per sample and in AUC / accuracy.

Every attack takes ``on_step(name, done, total)``, called after each gradient step or
query: the evaluation reports progress through it and raises from it to cancel.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from arfl_studio.training.attacks import (
    StepHook,
    attack_mode,
    fgsm_attack,
    input_gradient,
    keep_worst,
    margin,
    margin_objective,
    pgd_attack,
    per_sample,
    project,
)

ClampRange = tuple[float, float] | None

ATTACKS = ("fgsm", "pgd", "pgd-strong", "apgd", "square", "worst")
WHITE_BOX = ("fgsm", "pgd", "pgd-strong", "apgd")
GRADIENT_FREE = ("square",)
ENSEMBLE_MEMBERS = ("pgd-strong", "apgd", "square")  # the members of ``worst``
APGD_LOSSES = ("margin", "ce", "both")

# Defaults per attack (the CLI and evaluate_robustness use them when not overridden).
DEFAULT_STEPS = {"pgd": 10, "pgd-strong": 100, "apgd": 100, "worst": 100}
DEFAULT_RESTARTS = {"pgd": 1, "pgd-strong": 5, "apgd": 1, "worst": 5}
DEFAULT_QUERIES = 1000
AUTOATTACK_SQUARE_QUERIES = 5000  # AutoAttack's Square budget (Croce & Hein 2020, "standard" version)


def attack_parameters(
    attack: str,
    eps: float,
    *,
    steps: int | None = None,
    restarts: int | None = None,
    step_size: float | None = None,
    queries: int | None = None,
    loss: str = "margin",
) -> dict:
    """Every parameter ``attack`` uses at radius ``eps`` with these settings (defaults filled in):
    the attack JSON records them so that it alone reproduces the attack."""
    if attack == "fgsm":
        return {"attack": attack, "steps": 1, "step_size": eps, "random_start": False, "loss": "margin"}
    if attack in ("pgd", "pgd-strong"):
        n = steps or DEFAULT_STEPS[attack]
        return {
            "attack": attack,
            "steps": n,
            "restarts": restarts or DEFAULT_RESTARTS[attack],
            "step_size": 2.5 * eps / n if step_size is None else step_size,
            "random_start": True,
            "loss": "margin",
        }
    if attack == "apgd":
        return {
            "attack": attack,
            "steps": steps or DEFAULT_STEPS["apgd"],
            "restarts": restarts or DEFAULT_RESTARTS["apgd"],
            "loss": loss,
            "initial_step_size": 2.0 * eps,
            "momentum": 0.75,
            "rho": 0.75,
            "random_start": True,
        }
    if attack == "square":
        return {"attack": attack, "queries": queries or DEFAULT_QUERIES, "p_init": 0.8, "loss": "margin"}
    if attack == "worst":
        n, q = steps or DEFAULT_STEPS["worst"], queries or DEFAULT_QUERIES
        return {
            "attack": attack,
            "members": {
                "pgd-strong": attack_parameters(
                    "pgd-strong", eps, steps=n, restarts=restarts or DEFAULT_RESTARTS["worst"], step_size=step_size
                ),
                "apgd": attack_parameters("apgd", eps, steps=n, restarts=1),
                "square": {**attack_parameters("square", eps, queries=q), "queries_unbroken": square_budget(q)},
            },
            "keeps": "each image's largest margin over the members",
        }
    raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")


def bce_objective(targets: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda logits: F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")


def _loss_and_grad(model: nn.Module, x: torch.Tensor, objective) -> tuple[torch.Tensor, torch.Tensor]:
    grad, loss = input_gradient(model, x, objective)
    return loss, grad.detach()


def _checkpoints(steps: int) -> list[int]:
    """APGD's checkpoints w_j = ceil(p_j * steps): p_0 = 0, p_1 = 0.22, p_j+1 = p_j + max(p_j - p_j-1 - 0.03, 0.06)."""
    p = [0.0, 0.22]
    while p[-1] < 1:
        p.append(p[-1] + max(p[-1] - p[-2] - 0.03, 0.06))
    return sorted({int(math.ceil(q * steps)) for q in p if q <= 1})


def _margin_of(model: nn.Module, x_adv: torch.Tensor, targets: torch.Tensor, threshold: float) -> torch.Tensor:
    with torch.no_grad():
        return margin(model(x_adv).float(), targets, threshold)


def apgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    steps: int = 100,
    restarts: int = 1,
    loss: str = "margin",
    clamp: ClampRange = (0.0, 1.0),
    threshold: float = 0.0,
    rho: float = 0.75,
    momentum: float = 0.75,
    generator: torch.Generator | None = None,
    on_step: StepHook | None = None,
) -> torch.Tensor:
    """Auto-PGD (Croce & Hein 2020, Alg. 1) for one logit; returns the highest-loss point per sample.

    ``loss``: ``"margin"`` (default), ``"ce"`` (BCE: AutoAttack's APGD-CE) or ``"both"``
    (both runs, each sample keeps the one with the larger margin).
    """
    if not eps >= 0 or steps < 1 or restarts < 1:
        raise ValueError(f"apgd needs eps >= 0, steps >= 1, restarts >= 1 (got {eps}, {steps}, {restarts})")
    if loss not in APGD_LOSSES:
        raise ValueError(f"apgd loss must be one of {APGD_LOSSES}, got {loss!r}")
    x = x.detach().float()
    if eps == 0:
        return x.clone()
    losses = ["margin", "ce"] if loss == "both" else [loss]
    total = len(losses) * restarts * steps
    best_adv, best_margin = x.clone(), None
    with attack_mode(model):
        for i, name in enumerate(losses):
            objective = bce_objective(targets) if name == "ce" else margin_objective(targets, threshold)
            for r in range(restarts):
                offset = (i * restarts + r) * steps

                def hook(_name, done, _total, offset=offset):
                    if on_step is not None:
                        on_step("apgd" if name == "margin" else "apgd-ce", offset + done, total)

                x_max = _apgd_run(model, x, objective, eps, steps, clamp, rho, momentum, generator, hook)
                # restarts and losses compete on the margin (CE is a monotone function of it)
                best_adv, best_margin = keep_worst(best_adv, best_margin, x_max, _margin_of(model, x_max, targets, threshold))
    return best_adv.detach()


def _apgd_run(model, x, objective, eps, steps, clamp, rho, momentum, generator, on_step) -> torch.Tensor:
    """One APGD run from a random start; the highest-objective point per sample."""
    checks = set(_checkpoints(steps)) - {0}
    noise = torch.rand(x.shape, generator=generator, device="cpu" if generator is None else generator.device)
    x_k = project(x + (noise.to(x.device) * 2 - 1) * eps, x, eps, clamp)
    eta = torch.full((len(x),), 2.0 * eps, device=x.device)
    loss_k, grad = _loss_and_grad(model, x_k, objective)
    x_max, f_max = x_k.clone(), loss_k.clone()
    x_prev = x_k.clone()
    # first step: plain projected gradient step
    x_next = project(x_k + per_sample(eta, x) * grad.sign(), x, eps, clamp)
    last_check, improved = 0, torch.zeros(len(x), device=x.device)
    loss_prev = loss_k
    f_max_at_check, eta_at_check = f_max.clone(), eta.clone()
    for k in range(1, steps + 1):
        x_prev, x_k = x_k, x_next
        loss_k, grad = _loss_and_grad(model, x_k, objective)
        better = loss_k > f_max
        improved += (loss_k > loss_prev).float()  # steps that raised the loss (condition 1)
        x_max = torch.where(per_sample(better, x), x_k, x_max)
        f_max = torch.where(better, loss_k, f_max)
        if k in checks:
            window = k - last_check
            cond1 = improved < rho * window
            cond2 = (eta == eta_at_check) & (f_max == f_max_at_check)
            halve = cond1 | cond2
            eta = torch.where(halve, eta / 2, eta)
            x_k = torch.where(per_sample(halve, x), x_max, x_k)
            if halve.any():  # restart momentum from the best point
                x_prev = torch.where(per_sample(halve, x), x_max, x_prev)
            last_check, improved = k, torch.zeros_like(improved)
            f_max_at_check, eta_at_check = f_max.clone(), eta.clone()
            if halve.any():
                loss_k, grad = _loss_and_grad(model, x_k, objective)
        loss_prev = loss_k
        z = project(x_k + per_sample(eta, x) * grad.sign(), x, eps, clamp)
        x_next = project(x_k + momentum * (z - x_k) + (1 - momentum) * (x_k - x_prev), x, eps, clamp)
        on_step("apgd", k, steps)
    final_loss, _ = _loss_and_grad(model, x_next, objective)
    better = final_loss > f_max
    return torch.where(per_sample(better, x), x_next, x_max)


def _p_selection(p_init: float, it: int, n_queries: int) -> float:
    """Square Attack's schedule for the fraction of pixels changed (rescaled to a budget of 10,000)."""
    it = int(it / n_queries * 10000)
    for bound, divisor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256)):
        if it <= bound:
            return p_init / divisor
    return p_init / 512


@torch.no_grad()
def square_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    queries: int = DEFAULT_QUERIES,
    p_init: float = 0.8,
    clamp: ClampRange = (0.0, 1.0),
    threshold: float = 0.0,
    generator: torch.Generator | None = None,
    on_step: StepHook | None = None,
) -> torch.Tensor:
    """Square Attack, L-inf (Andriushchenko et al. 2020), batched; no gradients at all.

    Starts from vertical stripes of +-eps, then each query replaces one random square
    window (per sample) of the perturbation with a random +-eps per channel and keeps
    it if the margin rose. The budget is ``queries`` forward passes of the batch
    (the first one is the stripe initialisation). Every sample uses the whole budget:
    AUC depends on how far scores move, not only on whether they cross the threshold.
    """
    if not eps >= 0 or queries < 1:
        raise ValueError(f"square needs eps >= 0 and queries >= 1 (got {eps}, {queries})")
    x = x.detach().float()
    if eps == 0:
        return x.clone()
    dev = "cpu" if generator is None else generator.device

    def rand(*shape):
        return torch.rand(shape, generator=generator, device=dev).to(x.device)

    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    with attack_mode(model):
        stripes = torch.where(rand(*lead, c, 1, w) < 0.5, -eps, eps)
        delta = stripes.expand_as(x).clone()
        x_best = project(x + delta, x, eps, clamp)
        best = margin(model(x_best).float(), targets, threshold)
        if on_step is not None:
            on_step("square", 1, queries)
        rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        for i in range(queries - 1):
            p = _p_selection(p_init, i, queries)
            s = max(min(int(round(math.sqrt(p * h * w))), h, w), 1)
            r0 = (rand(*lead) * (h - s + 1)).long()
            c0 = (rand(*lead) * (w - s + 1)).long()
            in_r = (rows >= r0[..., None]) & (rows < r0[..., None] + s)
            in_c = (cols >= c0[..., None]) & (cols < c0[..., None] + s)
            window = (in_r[..., :, None] & in_c[..., None, :]).unsqueeze(-3)  # (..., 1, H, W)
            values = torch.where(rand(*lead, c, 1, 1) < 0.5, -eps, eps)
            delta_new = torch.where(window, values, x_best - x)
            x_new = project(x + delta_new, x, eps, clamp)
            score = margin(model(x_new).float(), targets, threshold)
            better = score > best
            x_best = torch.where(per_sample(better, x), x_new, x_best)
            best = torch.where(better, score, best)
            if on_step is not None:
                on_step("square", i + 2, queries)
    return x_best.detach()


def worst_case_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    *,
    steps: int = DEFAULT_STEPS["worst"],
    restarts: int = DEFAULT_RESTARTS["worst"],
    step_size: float | None = None,
    queries: int = DEFAULT_QUERIES,
    clamp: ClampRange = (0.0, 1.0),
    threshold: float = 0.0,
    generator: torch.Generator | None = None,
    on_step: StepHook | None = None,
    members_out: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The ensemble of :data:`ENSEMBLE_MEMBERS`: each sample keeps the member output with the largest margin.

    ``steps`` applies to pgd-strong and apgd, ``restarts`` to pgd-strong. Square runs
    ``queries`` queries on every sample, then :func:`square_budget` (at least
    AutoAttack's 5,000) more on the samples no member has broken (margin <= 0). ``members_out``
    (a dict) receives each member's adversarial examples.
    """
    x = x.detach().float()
    targets = targets.to(x.device).float()
    best_adv, best_margin = x.clone(), None
    for member in ENSEMBLE_MEMBERS:
        if member == "square":
            adv = _square_where_unbroken(model, x, targets, eps, queries, best_margin, clamp, threshold, generator, on_step)
        else:
            adv = run_attack(
                model,
                x,
                targets,
                member,
                eps,
                steps=steps,
                restarts=restarts if member == "pgd-strong" else 1,
                step_size=step_size,
                clamp=clamp,
                threshold=threshold,
                generator=generator,
                on_step=on_step,
            )
        if members_out is not None:
            members_out[member] = adv
        with attack_mode(model):
            best_adv, best_margin = keep_worst(best_adv, best_margin, adv, _margin_of(model, adv, targets, threshold))
    return best_adv.detach()


def square_budget(queries: int) -> int:
    """Square's queries on the images the ensemble leaves unbroken after its short run."""
    return max(int(queries), AUTOATTACK_SQUARE_QUERIES)


def _square_where_unbroken(model, x, targets, eps, queries, margins, clamp, threshold, generator, on_step):
    """Square with ``queries`` on every sample, then :func:`square_budget` more on those still unbroken.

    The second run reports its queries as ``square-unbroken``; each sample keeps the run
    with the larger margin.
    """
    adv = square_attack(model, x, targets, eps, queries=queries, clamp=clamp, threshold=threshold, generator=generator, on_step=on_step)
    with attack_mode(model):
        found = _margin_of(model, adv, targets, threshold)
    best = found if margins is None else torch.maximum(found, margins)
    unbroken = best <= 0
    if unbroken.any():
        more = square_attack(
            model,
            x[unbroken],
            targets[unbroken],
            eps,
            queries=square_budget(queries),
            clamp=clamp,
            threshold=threshold,
            generator=generator,
            on_step=None if on_step is None else lambda _n, d, t: on_step("square-unbroken", d, t),
        )
        with attack_mode(model):
            better = _margin_of(model, more, targets[unbroken], threshold) > found[unbroken]
        rows = torch.nonzero(unbroken).reshape(-1)[better]
        adv[rows] = more[better]
    return adv


def run_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    attack: str,
    eps: float,
    *,
    steps: int | None = None,
    restarts: int | None = None,
    step_size: float | None = None,
    queries: int | None = None,
    loss: str = "margin",
    clamp: ClampRange = (0.0, 1.0),
    threshold: float = 0.0,
    generator: torch.Generator | None = None,
    on_step: StepHook | None = None,
    members_out: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Adversarial examples for ``attack`` in :data:`ATTACKS` at radius ``eps``.

    ``loss`` is APGD's (``margin``, ``ce`` or ``both``); the other attacks use the margin.
    ``members_out`` is filled with the members' outputs when ``attack == "worst"``.
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    targets = targets.to(x.device).float()
    objective = margin_objective(targets, threshold)
    if attack == "fgsm":
        return fgsm_attack(model, x, targets, eps, clamp=clamp, objective=objective, on_step=on_step)
    if attack in ("pgd", "pgd-strong"):
        return pgd_attack(
            model,
            x,
            targets,
            eps,
            steps=steps or DEFAULT_STEPS[attack],
            step_size=step_size,
            restarts=restarts or DEFAULT_RESTARTS[attack],
            clamp=clamp,
            objective=objective,
            generator=generator,
            on_step=on_step,
            name=attack,
        )
    if attack == "apgd":
        return apgd_attack(
            model,
            x,
            targets,
            eps,
            steps=steps or DEFAULT_STEPS["apgd"],
            restarts=restarts or DEFAULT_RESTARTS["apgd"],
            loss=loss,
            clamp=clamp,
            threshold=threshold,
            generator=generator,
            on_step=on_step,
        )
    if attack == "worst":
        return worst_case_attack(
            model,
            x,
            targets,
            eps,
            steps=steps or DEFAULT_STEPS["worst"],
            restarts=restarts or DEFAULT_RESTARTS["worst"],
            step_size=step_size,
            queries=queries or DEFAULT_QUERIES,
            clamp=clamp,
            threshold=threshold,
            generator=generator,
            on_step=on_step,
            members_out=members_out,
        )
    return square_attack(
        model, x, targets, eps, queries=queries or DEFAULT_QUERIES, clamp=clamp, threshold=threshold, generator=generator, on_step=on_step
    )
