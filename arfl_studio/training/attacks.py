"""White-box L-infinity attacks on single-logit binary classifiers.

The attacks ascend the logit margin ``-(2y - 1) * (z - t)`` (see :func:`margin_objective`):
for one logit BCE is a monotone function of it, so the sign steps are BCE's, but its
gradient never underflows for confident predictions. Attacks work in the model's input
space: pixels in [0, 1] for mammograms (image batches ``(N, C, H, W)`` are clamped to
[0, 1] unless told otherwise), raw coordinates for two-moon (feature vectors are not
clamped). While a perturbation is made the model is in eval mode;
afterwards every module gets back its own mode (a global ``model.train()`` would
unfreeze batch-norm layers frozen on purpose). Gradients are taken with respect to
the input only, so parameter ``.grad`` is never touched. Attacks run in float32
even inside an autocast region: an epsilon of 1e-4 is below half precision's
resolution around 1.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

Objective = Callable[[torch.Tensor], torch.Tensor]  # logits -> per-sample loss to maximise
ClampRange = tuple[float, float] | None
# Called after every step (gradient step or query) as on_step(attack name, steps done, steps in total);
# the evaluation uses it for progress and raises from it to stop an attack at once (cancel).
StepHook = Callable[[str, int, int], None]
PIXEL_RANGE = (0.0, 1.0)
AUTO = "auto"


def resolve_clamp(clamp: ClampRange | str, x: torch.Tensor) -> ClampRange:
    """``"auto"``: image batches (N, C, H, W) are pixels in [0, 1]; feature vectors are not clamped."""
    if isinstance(clamp, str):
        if clamp != AUTO:
            raise ValueError(f"clamp must be (low, high), None or 'auto', got {clamp!r}")
        return PIXEL_RANGE if x.dim() >= 4 else None
    return clamp


@contextlib.contextmanager
def attack_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode for the duration, then each module's own training flag restored."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, was_training in modes:
            module.training = was_training


def _check(eps: float, steps: int | None = None, restarts: int | None = None) -> None:
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if restarts is not None and restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")


def bce_objective(targets: torch.Tensor) -> Objective:
    return lambda logits: F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")


def margin(logits: torch.Tensor, targets: torch.Tensor, threshold: float = 0.0) -> torch.Tensor:
    """Per-sample margin -(2y - 1) * (z - t): > 0 exactly when the prediction is wrong."""
    return -(2 * targets.to(logits.dtype) - 1) * (logits - threshold)


def margin_objective(targets: torch.Tensor, threshold: float = 0.0) -> Objective:
    """The margin as the attack objective: for one logit, BCE is a monotone function of it.

    Sign steps and worst-of-restarts choices are therefore the same as on BCE, but
    its gradient never underflows: BCE's (sigmoid(z) - y) is exactly 0 in float32
    for a confidently correct sample (|z| > ~17), which would leave it unattacked.
    """
    return lambda logits: margin(logits, targets, threshold)


def per_sample(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-sample tensor shaped to broadcast over ``like``'s sample dimensions."""
    return mask.reshape(mask.shape + (1,) * (like.dim() - mask.dim()))


def keep_worst(best_adv, best_loss, x_adv, loss):
    """Per sample, the perturbation with the higher loss (the first call just takes the new one)."""
    if best_loss is None:
        return x_adv, loss
    better = loss > best_loss
    return torch.where(per_sample(better, x_adv), x_adv, best_adv), torch.where(better, loss, best_loss)


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float, clamp: ClampRange) -> torch.Tensor:
    x_adv = torch.max(torch.min(x_adv, x + eps), x - eps)
    if clamp is not None:
        x_adv = x_adv.clamp(*clamp)
    return x_adv


def input_gradient(model: nn.Module, x_adv: torch.Tensor, objective: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad(), _float32(x_adv):
        loss = objective(model(x_adv).float())
        (grad,) = torch.autograd.grad(loss.sum(), x_adv)
    return grad, loss.detach()


@contextlib.contextmanager
def _float32(x: torch.Tensor) -> Iterator[None]:
    if x.device.type in ("cuda", "cpu", "mps") and torch.is_autocast_enabled(x.device.type):
        with torch.autocast(device_type=x.device.type, enabled=False):
            yield
    else:
        yield


def fgsm_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    clamp: ClampRange | str = AUTO,
    objective: Objective | None = None,
    on_step: StepHook | None = None,
) -> torch.Tensor:
    """Fast gradient sign method: one step of size eps along the sign of the margin's input gradient."""
    _check(eps)
    if eps == 0:
        return x.detach().clone()
    clamp = resolve_clamp(clamp, x)
    objective = objective or margin_objective(targets)
    x = x.detach().float()
    with attack_mode(model):
        grad, _ = input_gradient(model, x, objective)
    if on_step is not None:
        on_step("fgsm", 1, 1)
    return project(x + eps * grad.sign(), x, eps, clamp).detach()


def pgd_attack(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    steps: int = 7,
    step_size: float | None = None,
    random_start: bool = True,
    restarts: int = 1,
    clamp: ClampRange | str = AUTO,
    objective: Objective | None = None,
    generator: torch.Generator | None = None,
    on_step: StepHook | None = None,
    name: str = "pgd",
) -> torch.Tensor:
    """Projected gradient descent (Madry et al.) in the L-inf ball of radius eps.

    ``step_size`` defaults to 2.5 * eps / steps. With several restarts each sample
    keeps the perturbation that reached the highest loss. ``on_step`` is called after
    every step with ``name``.
    """
    _check(eps, steps, restarts)
    if eps == 0:
        return x.detach().clone()
    clamp = resolve_clamp(clamp, x)
    objective = objective or margin_objective(targets)
    step_size = 2.5 * eps / steps if step_size is None else step_size
    x = x.detach().float()
    best_adv, best_loss = x.clone(), None
    with attack_mode(model):
        for restart in range(restarts):
            x_adv = x.clone()
            if random_start:
                device = x.device if generator is None else generator.device
                noise = torch.rand(x.shape, generator=generator, device=device).to(x.device)
                x_adv = project(x + (noise * 2 - 1) * eps, x, eps, clamp)
            for k in range(steps):
                grad, _ = input_gradient(model, x_adv, objective)
                x_adv = project(x_adv + step_size * grad.sign(), x, eps, clamp)
                if on_step is not None:
                    on_step(name, restart * steps + k + 1, restarts * steps)
            if restarts == 1:
                return x_adv.detach()  # nothing to compare: skip scoring it (one forward pass)
            with torch.no_grad(), _float32(x_adv):
                loss = objective(model(x_adv).float())
            best_adv, best_loss = keep_worst(best_adv, best_loss, x_adv, loss)
    return best_adv.detach()
