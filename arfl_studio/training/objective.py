"""The loss of one training batch for every method.

``mix`` / ``dsbn`` (Eq. 4/5): (1 - r) * [L_cls(x_adv) + s * lambda * L_robust(x_adv)]
+ r * [L_cls(x) + lambda * L_robust(x)], with s = +1 (``consistent``, default) or
s = -1 (``as-printed``: Eq. 5's minus sign, which we read as a slip). The attack is
skipped when r = 1 and the clean pass when r = 0. DSBN makes the attack and the
adversarial pass through the adversarial batch norms.

``trades`` (Zhang et al. 2019, one logit): L_cls(x) + beta * KL(p(x) || p(x_adv)),
where x_adv maximises that KL by PGD (or one FGSM-sized step) from a random start in
the ball.

``mirst`` -- what we implement of MIRST (Sun et al. 2022) as the ARFL paper
describes it ("different levels of perturbations to generate adversarial examples
as additional data"): for each level l in ``mirst_levels`` a PGD example at
eps = l * epsilon_1 is made, and the loss is the mean BCE over the clean batch and
all K adversarial instances, (L_cls(x) + sum_k L_cls(x_adv_k)) / (K + 1). The
original also pseudo-labels unlabelled data and uses a drop-max layer; neither is
part of the ARFL paper's description, and no unlabelled data exists here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn

from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.training.attacks import attack_mode, fgsm_attack, pgd_attack
from arfl_studio.training.losses import (
    bernoulli_kl,
    classification_loss,
    robust_loss,
    to_signed_labels,
    trades_kl,
)
from arfl_studio.training.methods import AttackSettings, MethodSettings, SettingError


@dataclass
class LossTerms:
    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)  # detached, for logs and curves


def make_adversarial(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    attack: AttackSettings,
    eps: float | None = None,
    objective=None,
) -> torch.Tensor:
    eps = attack.eps if eps is None else eps
    if attack.kind == "fgsm":
        return fgsm_attack(model, x, targets, eps, clamp=attack.clamp, objective=objective)
    return pgd_attack(
        model,
        x,
        targets,
        eps,
        steps=attack.steps,
        step_size=attack.step_size,
        random_start=attack.random_start,
        clamp=attack.clamp,
        objective=objective,
    )


def _term(model, x, targets, lam, variant, sign=1.0, pos_weight=None):
    if lam > 0:
        logits, features = model(x, return_features=True)
        cls = classification_loss(logits, targets, pos_weight)
        rob = robust_loss(features, to_signed_labels(targets), variant)
        return cls + sign * lam * rob, cls, rob
    cls = classification_loss(model(x), targets, pos_weight)
    return cls, cls, None


def _mix_loss(model, x, targets, method: MethodSettings, pos_weight=None) -> LossTerms:
    r, lam = method.mix_ratio, method.robust_weight
    total = torch.zeros((), device=x.device)
    parts: dict[str, torch.Tensor] = {}
    if r < 1:
        route = "adversarial" if method.scheme == "dsbn" else "clean"
        with bn_route(model, route):
            x_adv = make_adversarial(model, x, targets, method.attack)
            sign = 1.0 if method.eq5_sign == "consistent" else -1.0
            adv, cls, rob = _term(model, x_adv, targets, lam, method.robust_variant, sign, pos_weight)
        total = total + (1 - r) * adv
        parts["cls_adversarial"] = cls.detach()
        if rob is not None:
            parts["robust_adversarial"] = rob.detach()
    if r > 0:
        clean, cls, rob = _term(model, x, targets, lam, method.robust_variant, pos_weight=pos_weight)
        total = total + r * clean
        parts["cls_clean"] = cls.detach()
        if rob is not None:
            parts["robust_clean"] = rob.detach()
    return LossTerms(total, parts)


def _trades_attack(attack: AttackSettings) -> AttackSettings:
    """TRADES' KL has zero gradient at x_adv = x, so the maximisation must start off x.

    TRADES' code starts PGD at x + 0.001 N(0, 1); we start uniformly in the ball. FGSM
    becomes one step of size eps from that random start (plain FGSM would not move).
    """
    if attack.kind == "fgsm":
        return replace(attack, kind="pgd", steps=1, step_size=attack.eps, random_start=True)
    return replace(attack, random_start=True)


def _trades_loss(model, x, targets, method: MethodSettings, pos_weight=None) -> LossTerms:
    with attack_mode(model), torch.no_grad():
        reference = model(x).detach().float()
    x_adv = make_adversarial(model, x, targets, _trades_attack(method.attack), objective=lambda logits: bernoulli_kl(reference, logits))
    clean_logits, adv_logits = model(x), model(x_adv)
    cls = classification_loss(clean_logits, targets, pos_weight)
    kl = trades_kl(clean_logits, adv_logits)
    return LossTerms(cls + method.trades_beta * kl, {"cls_clean": cls.detach(), "trades_kl": kl.detach()})


def _mirst_loss(model, x, targets, method: MethodSettings, pos_weight=None) -> LossTerms:
    cls_clean = classification_loss(model(x), targets, pos_weight)
    total, parts = cls_clean, {"cls_clean": cls_clean.detach()}
    for level in method.mirst_levels:
        x_adv = make_adversarial(model, x, targets, method.attack, eps=level * method.attack.eps)
        cls = classification_loss(model(x_adv), targets, pos_weight)
        total = total + cls
        parts[f"cls_adversarial@{level:g}"] = cls.detach()
    return LossTerms(total / (len(method.mirst_levels) + 1), parts)


def compute_loss(
    model: nn.Module, x: torch.Tensor, targets: torch.Tensor, method: MethodSettings, pos_weight: float | None = None
) -> LossTerms:
    """The training loss of one batch (targets in {0, 1}); call ``.total.backward()``.

    ``pos_weight`` weighs the malignant samples in every BCE term (class imbalance);
    the attacks that make the adversarial examples are not weighted.
    """
    if method.scheme == "dsbn" and not has_dual_bn(model):
        raise SettingError("the dsbn scheme needs a model with dual batch norms (e.g. backbone 'vgg16_bn' with dual_bn)")
    if method.scheme in ("trades", "mirst") and method.robust_weight > 0:
        raise SettingError(f"robust_weight (ARFL) applies to the mix and dsbn schemes, not {method.scheme!r}")
    if method.scheme in ("mix", "dsbn"):
        terms = _mix_loss(model, x, targets, method, pos_weight)
    elif method.scheme == "trades":
        terms = _trades_loss(model, x, targets, method, pos_weight)
    else:
        terms = _mirst_loss(model, x, targets, method, pos_weight)
    terms.parts["total"] = terms.total.detach()
    return terms
