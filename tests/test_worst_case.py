"""Exact worst-case search and gradient-masking diagnostics on two-moon models."""

import pytest
import torch
import torch.nn as nn

from arfl_studio.data.demo.two_moons import make_two_moons
from arfl_studio.evaluation.masking import masking_report, zero_gradient_fractions
from arfl_studio.evaluation.worst_case import grid_convergence, lattice, worst_case_search
from arfl_studio.models.mlp import TwoMoonMLP
from arfl_studio.training import classification_loss

EPS = 0.2


@pytest.fixture(scope="module")
def trained():
    """A small normally trained two-moon MLP (full-batch Adam, ~1 s)."""
    torch.manual_seed(0)
    x, y, xt, yt = (torch.from_numpy(a) for a in make_two_moons(0, n_train=1000, n_test=300))
    model = TwoMoonMLP(seeds=[0])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        classification_loss(model(x), y).backward()
        opt.step()
    return model, xt, yt


class StepMasked(nn.Module):
    """Gradient masking by construction: the input is snapped to a lattice (a hard step) first."""

    def __init__(self, inner, step=0.05):
        super().__init__()
        self.inner, self.step = inner, step

    def forward(self, x):
        return self.inner(torch.round(x / self.step) * self.step)


class Linear2D(nn.Module):
    def __init__(self, w, b):
        super().__init__()
        self.w, self.b = torch.tensor(w), torch.tensor(b)

    def forward(self, x):
        return x @ self.w + self.b


def test_lattice_has_corners_edges_and_centre():
    grid = lattice(0.2, 5)
    assert grid.shape == (25, 2)
    for corner in ([-0.2, -0.2], [-0.2, 0.2], [0.2, -0.2], [0.2, 0.2], [0.0, 0.0], [0.2, 0.0]):
        assert torch.isclose(grid, torch.tensor(corner)).all(dim=1).any()


def test_worst_case_is_exact_for_a_linear_model():
    # For a linear logit the worst L-inf perturbation is the corner -eps * y * sign(w).
    model = Linear2D([1.5, -0.7], 0.1)
    x = torch.randn(200, 2)
    t = (torch.rand(200) > 0.5).float()
    y = t * 2 - 1
    worst = worst_case_search(model, x, t, EPS, grid=5)
    expected = y * (x @ model.w + model.b) - EPS * model.w.abs().sum()
    assert torch.allclose(worst.margin, expected, atol=1e-5)
    assert ((worst.x_worst - x).abs() <= EPS + 1e-6).all()


def test_ensemble_search_equals_member_search(trained):
    model, xt, yt = trained
    ens = TwoMoonMLP(n_models=3, seeds=[0, 1, 2])
    x = xt[:100].expand(3, -1, -1)
    t = yt[:100].expand(3, -1)
    together = worst_case_search(ens, x, t, EPS, grid=11, chunk_elements=5000)
    for i in range(3):
        alone = worst_case_search(ens.member(i), x[i], t[i], EPS, grid=11)
        assert torch.allclose(together.margin[i], alone.margin, atol=1e-5)


def test_finer_grid_does_not_change_the_answer_at_the_default(trained):
    model, xt, yt = trained
    check = grid_convergence(model, xt, yt, EPS, grid=41)
    assert check.finer_grid == 81
    assert check.points_changed <= 1  # at most one of 300 verdicts moves with a 2x finer lattice
    assert check.max_abs_difference <= 1 / 300 + 1e-9


def test_normal_mlp_orders_worst_pgd_fgsm_and_is_not_flagged(trained):
    model, xt, yt = trained
    report = masking_report(model, xt, yt, EPS, pgd_steps=50, pgd_restarts=3, generator=torch.Generator().manual_seed(0))
    tol = 2 / len(yt)  # grid resolution
    assert report.worst_case_acc[0] <= report.pgd_acc[0] + tol
    assert report.pgd_acc[0] <= report.fgsm_acc[0] + tol
    assert report.fgsm_acc[0] < report.clean_acc[0]
    assert report.zero_grad_fraction[0] < 0.05
    assert report.flag(baseline_gap=report.fgsm_minus_worst[0]) == [False]


def test_masked_gradients_are_caught(trained):
    model, xt, yt = trained
    baseline = masking_report(model, xt, yt, EPS, pgd_steps=20, pgd_restarts=1)
    masked = masking_report(StepMasked(model), xt, yt, EPS, pgd_steps=20, pgd_restarts=1)
    assert masked.zero_grad_fraction[0] == 1.0
    assert masked.fgsm_acc[0] == pytest.approx(masked.clean_acc[0])  # FGSM sees no gradient: high accuracy
    assert masked.fgsm_acc[0] > 0.9
    assert masked.worst_case_acc[0] < masked.fgsm_acc[0] - 0.1  # the exact search is not fooled
    assert masked.worst_case_acc[0] <= baseline.worst_case_acc[0] + 0.05
    assert masked.flag(baseline_gap=baseline.fgsm_minus_worst[0]) == [True]
    assert baseline.flag(baseline_gap=baseline.fgsm_minus_worst[0]) == [False]


def test_zero_gradient_fraction_counts_non_finite():
    class NaNGrad(nn.Module):
        def forward(self, x):
            return torch.sqrt(x[..., 0] * 0)  # d/dx sqrt(0) is inf

    x = torch.randn(10, 2)
    loss_frac, logit_frac = zero_gradient_fractions(NaNGrad(), x, torch.ones(10))
    assert float(loss_frac) == 1.0 and float(logit_frac) == 1.0


def test_refinement_never_worsens_the_search(trained):
    model, xt, yt = trained
    coarse = worst_case_search(model, xt, yt, EPS, grid=11, refine=0)
    refined = worst_case_search(model, xt, yt, EPS, grid=11, refine=11)
    assert (refined.margin <= coarse.margin + 1e-6).all()
    assert refined.evaluations > coarse.evaluations
