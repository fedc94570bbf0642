"""Exact worst-case evaluation for low-dimensional inputs (two-moon: 2-D).

In two dimensions the L-inf ball of radius eps around a point is a square, and the
worst perturbation can be searched instead of guessed: every point is evaluated at
all offsets of a ``grid`` x ``grid`` lattice spanning [-eps, eps]^2 (corners and
edges included; an odd ``grid`` includes the clean point), then around the
``refine_top`` worst lattice offsets a finer ``refine`` x ``refine`` lattice
spanning one lattice step in each direction (clipped to the ball) is searched.
The worst case is the offset with the lowest margin ``y * logit`` (y in {-1, +1}),
i.e. the highest BCE loss. A point counts as robust when the prediction at its
worst offset is still correct.

Everything is vectorised: all points x a chunk of offsets go through the model in
one forward pass. Models may carry leading ensemble dims: ``x`` of shape
``(..., N, D)`` and targets ``(..., N)``, the model mapping ``(..., K, D)`` to
``(..., K)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from arfl_studio.training.attacks import attack_mode

DEFAULT_GRID = 41
DEFAULT_REFINE = 11
DEFAULT_REFINE_TOP = 3


@dataclass
class WorstCase:
    x_worst: torch.Tensor  # (..., N, D) the worst point found per input
    margin: torch.Tensor  # (..., N) y * logit at x_worst (lower is worse)
    correct: torch.Tensor  # (..., N) bool: prediction at x_worst is right
    evaluations: int  # model evaluations per input point

    def accuracy(self) -> torch.Tensor:
        """Worst-case accuracy per leading index (a scalar tensor without ensemble dims)."""
        return self.correct.float().mean(dim=-1)


def lattice(eps: float, points: int, dims: int = 2, device=None) -> torch.Tensor:
    """All offsets of a regular lattice with ``points`` values per axis in [-eps, eps]: (points**dims, dims)."""
    if points < 2:
        raise ValueError(f"grid points per axis must be >= 2 (to include both edges), got {points}")
    axis = torch.linspace(-eps, eps, points, device=device)
    mesh = torch.meshgrid(*([axis] * dims), indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def _margins(model, x, y_pm, offsets, chunk_elements):
    """y * logit at x + offsets: x (..., N, D), offsets (..., N, K, D) or (K, D) -> (..., N, K)."""
    n, d = x.shape[-2], x.shape[-1]
    k = offsets.shape[-2]
    per_chunk = max(1, chunk_elements // max(1, x[..., 0].numel()))
    out = []
    for start in range(0, k, per_chunk):
        off = offsets[..., start : start + per_chunk, :]
        xs = x.unsqueeze(-2) + off  # (..., N, k, D)
        kk = xs.shape[-2]
        logits = model(xs.reshape(*x.shape[:-2], n * kk, d)).float()
        out.append(logits.reshape(*x.shape[:-2], n, kk) * y_pm.unsqueeze(-1))
    return torch.cat(out, dim=-1)


@torch.no_grad()
def worst_case_search(
    model: nn.Module,
    x: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
    grid: int = DEFAULT_GRID,
    refine: int = DEFAULT_REFINE,
    refine_top: int = DEFAULT_REFINE_TOP,
    chunk_elements: int = 100_000,  # points x offsets per forward pass; small chunks stay in cache
) -> WorstCase:
    """Search the whole L-inf ball of radius ``eps`` around every point (see module doc)."""
    if not eps >= 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if refine < 0 or refine == 1:
        raise ValueError(f"refine must be 0 (off) or >= 2 points per axis, got {refine}")
    x = x.detach().float()
    y_pm = targets.to(x.device).float() * 2 - 1
    dims = x.shape[-1]
    with attack_mode(model):
        if eps == 0:
            margin = _margins(model, x, y_pm, torch.zeros(1, dims, device=x.device), chunk_elements)[..., 0]
            return WorstCase(x.clone(), margin, _correct(margin, y_pm), 1)
        coarse = lattice(eps, grid, dims, x.device)
        margins = _margins(model, x, y_pm, coarse, chunk_elements)  # (..., N, G^D)
        evaluations = coarse.shape[0]
        top = min(refine_top, coarse.shape[0])
        best_margin, best_index = margins.min(dim=-1)
        best_offset = coarse[best_index]
        if refine >= 2 and top > 0:
            step = 2 * eps / (grid - 1)
            fine = lattice(step, refine, dims, x.device)  # (R^D, D)
            centres = coarse[margins.topk(top, dim=-1, largest=False).indices]  # (..., N, top, D)
            candidates = (centres.unsqueeze(-2) + fine).clamp(-eps, eps)  # (..., N, top, R^D, D)
            candidates = candidates.reshape(*centres.shape[:-2], top * fine.shape[0], dims)
            fine_margins = _margins(model, x, y_pm, candidates, chunk_elements)
            evaluations += candidates.shape[-2]
            fine_best, fine_index = fine_margins.min(dim=-1)
            better = fine_best < best_margin
            fine_offset = torch.gather(candidates, -2, fine_index[..., None, None].expand(*fine_index.shape, 1, dims)).squeeze(-2)
            best_offset = torch.where(better.unsqueeze(-1), fine_offset, best_offset)
            best_margin = torch.where(better, fine_best, best_margin)
    return WorstCase(x + best_offset, best_margin, _correct(best_margin, y_pm), evaluations)


def _correct(margin: torch.Tensor, y_pm: torch.Tensor) -> torch.Tensor:
    # Same rule as training.metrics.accuracy: predict 1 iff logit > 0.
    logit = margin * y_pm
    return (logit > 0) == (y_pm > 0)


def worst_case_accuracy(model, x, targets, eps, **kwargs) -> torch.Tensor:
    return worst_case_search(model, x, targets, eps, **kwargs).accuracy()


@dataclass
class GridCheck:
    grid: int
    finer_grid: int
    accuracy: list[float]
    finer_accuracy: list[float]
    max_abs_difference: float  # accuracy points (fractions), max over models
    points_changed: int  # inputs whose verdict differs, over all models


def grid_convergence(model, x, targets, eps, grid=DEFAULT_GRID, factor: int = 2, **kwargs) -> GridCheck:
    """Worst-case accuracy at ``grid`` and at a lattice ``factor`` times finer (same corners)."""
    finer = (grid - 1) * factor + 1
    a = worst_case_search(model, x, targets, eps, grid=grid, **kwargs)
    b = worst_case_search(model, x, targets, eps, grid=finer, **kwargs)
    acc_a, acc_b = a.accuracy().reshape(-1), b.accuracy().reshape(-1)
    return GridCheck(
        grid,
        finer,
        acc_a.tolist(),
        acc_b.tolist(),
        float((acc_a - acc_b).abs().max()),
        int((a.correct != b.correct).sum()),
    )


def points_per_second(n_points: int, seconds: float) -> float:
    return n_points / seconds if seconds > 0 else math.inf
