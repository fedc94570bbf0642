"""Gradient-masking diagnostics for low-dimensional models (two-moon).

For every evaluated model: clean, FGSM, PGD (many steps, restarts) and exact
worst-case accuracy (:mod:`arfl_studio.evaluation.worst_case`), the fraction of
test points whose input gradient of the BCE loss is exactly zero or non-finite
(what FGSM and PGD follow) and the same for the gradient of the logit itself, and
the gaps FGSM - worst case and FGSM - PGD. A model is flagged when its FGSM -
worst-case gap exceeds the undefended baseline's gap by more than ``tolerance``
(a real robustness gain lowers both FGSM and worst-case error alike; masking
makes FGSM look good while the worst case stays bad).

All functions accept ensembles: ``x`` (..., N, D), targets (..., N); results are
per leading index.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from arfl_studio.evaluation.worst_case import (
    DEFAULT_GRID,
    DEFAULT_REFINE,
    DEFAULT_REFINE_TOP,
    worst_case_search,
)
from arfl_studio.training.attacks import attack_mode, fgsm_attack, pgd_attack

DEFAULT_TOLERANCE = 0.05  # accuracy (fraction) by which the FGSM-worst gap may exceed the baseline's


def _acc(model, x, targets) -> torch.Tensor:
    with torch.no_grad(), attack_mode(model):
        logits = model(x).float()
    return ((logits > 0) == (targets > 0.5)).float().mean(dim=-1)


def zero_gradient_fractions(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fraction of points whose input gradient is all zero or non-finite: (BCE loss, logit)."""
    x = x.detach().float().requires_grad_(True)
    with torch.enable_grad(), attack_mode(model):
        logits = model(x).float()
        loss = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        (g_loss,) = torch.autograd.grad(loss.sum(), x, retain_graph=True)
        (g_logit,) = torch.autograd.grad(logits.sum(), x)

    def dead(g):
        return ((g == 0).all(dim=-1) | ~torch.isfinite(g).all(dim=-1)).float().mean(dim=-1)

    return dead(g_loss), dead(g_logit)


@dataclass
class MaskingReport:
    """Per-model values (lists over the leading ensemble index; one entry for a single model)."""

    eps: float
    clean_acc: list[float]
    fgsm_acc: list[float]
    pgd_acc: list[float]
    worst_case_acc: list[float]
    zero_grad_fraction: list[float]
    zero_logit_grad_fraction: list[float]
    fgsm_minus_worst: list[float]
    fgsm_minus_pgd: list[float]
    settings: dict = field(default_factory=dict)
    worst_case: object = None  # the WorstCase search result (tensors), not serialised
    worst_case_seconds: float = 0.0

    def flag(self, baseline_gap: float, tolerance: float = DEFAULT_TOLERANCE) -> list[bool]:
        """Per model: does FGSM overstate robustness by much more than the baseline does?"""
        return [gap > baseline_gap + tolerance for gap in self.fgsm_minus_worst]

    def to_json(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "worst_case"}
        return data


def masking_report(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    *,
    pgd_steps: int = 50,
    pgd_restarts: int = 5,
    grid: int = DEFAULT_GRID,
    refine: int = DEFAULT_REFINE,
    refine_top: int = DEFAULT_REFINE_TOP,
    generator: torch.Generator | None = None,
) -> MaskingReport:
    """FGSM, PGD and exact worst-case accuracy with the masking diagnostics (no clamping)."""
    x, targets = x.detach().float(), targets.float()
    clean = _acc(model, x, targets)
    fgsm = _acc(model, fgsm_attack(model, x, targets, eps), targets)
    pgd_x = pgd_attack(model, x, targets, eps, steps=pgd_steps, restarts=pgd_restarts, generator=generator)
    pgd = _acc(model, pgd_x, targets)
    started = time.perf_counter()
    worst = worst_case_search(model, x, targets, eps, grid=grid, refine=refine, refine_top=refine_top)
    worst_seconds = time.perf_counter() - started
    worst_acc = worst.accuracy()
    zero_loss, zero_logit = zero_gradient_fractions(model, x, targets)
    as_list = lambda t: [float(v) for v in t.reshape(-1)]  # noqa: E731
    return MaskingReport(
        eps=float(eps),
        clean_acc=as_list(clean),
        fgsm_acc=as_list(fgsm),
        pgd_acc=as_list(pgd),
        worst_case_acc=as_list(worst_acc),
        zero_grad_fraction=as_list(zero_loss),
        zero_logit_grad_fraction=as_list(zero_logit),
        fgsm_minus_worst=as_list(fgsm - worst_acc),
        fgsm_minus_pgd=as_list(fgsm - pgd),
        settings=dict(
            pgd_steps=pgd_steps,
            pgd_restarts=pgd_restarts,
            pgd_step_size=2.5 * eps / pgd_steps,
            grid=grid,
            refine=refine,
            refine_top=refine_top,
            clamp=None,
        ),
        worst_case=worst,
        worst_case_seconds=worst_seconds,
    )
