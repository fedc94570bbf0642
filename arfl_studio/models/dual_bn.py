"""Dual (domain-specific) batch normalisation for the DSBN baseline.

Every ``BatchNorm2d`` becomes a :class:`DualBatchNorm2d` holding separate running
statistics *and* affine parameters for clean and adversarial batches. The route
in use is a property of the model: training switches to ``adversarial`` for the
attack and the adversarial pass; a deployed model cannot know which inputs are
adversarial, so evaluation and attacks at test time go through ``clean``.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import torch
import torch.nn as nn

ROUTES = ("clean", "adversarial")


class DualBatchNorm2d(nn.Module):
    def __init__(self, template: nn.BatchNorm2d):
        super().__init__()
        self.clean = copy.deepcopy(template)
        self.adversarial = copy.deepcopy(template)
        self.route = "clean"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.clean(x) if self.route == "clean" else self.adversarial(x)


def convert_to_dual_bn(module: nn.Module) -> nn.Module:
    """Replace each BatchNorm2d (in place) by a DualBatchNorm2d starting from its weights."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, DualBatchNorm2d(child))
        else:
            convert_to_dual_bn(child)
    return module


def has_dual_bn(model: nn.Module) -> bool:
    return any(isinstance(m, DualBatchNorm2d) for m in model.modules())


def set_bn_route(model: nn.Module, route: str) -> None:
    if route not in ROUTES:
        raise ValueError(f"bn route must be one of {ROUTES}, got {route!r}")
    for module in model.modules():
        if isinstance(module, DualBatchNorm2d):
            module.route = route


@contextlib.contextmanager
def bn_route(model: nn.Module, route: str) -> Iterator[None]:
    """Use ``route`` inside the block, then go back to whatever was set before."""
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    previous = [m.route for m in duals]
    set_bn_route(model, route)
    try:
        yield
    finally:
        for module, old in zip(duals, previous):
            module.route = old
