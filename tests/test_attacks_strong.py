import pytest
import torch
import torch.nn as nn

from arfl_studio.evaluation.attacks import ATTACKS, _checkpoints, apgd_attack, margin, run_attack, square_attack
from arfl_studio.evaluation.synthetic import blob_images, train_tiny_cnn
from arfl_studio.training.metrics import predict_logits


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = blob_images(96, size=24, seed=1)
    model = train_tiny_cnn(x, y, epochs=6, width=4)
    xt, yt = blob_images(32, size=24, seed=2)
    return model, xt, yt


class Linear(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d))

    def forward(self, x, return_features=False):
        return x.flatten(1) @ self.w


def test_margin_sign():
    z = torch.tensor([2.0, -2.0, 2.0, -2.0])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert margin(z, y).tolist() == [-2.0, 2.0, 2.0, -2.0]  # > 0 exactly when wrong
    assert margin(z, y, threshold=3.0).tolist() == [1.0, 5.0, -1.0, -5.0]


def test_apgd_checkpoints():
    w = _checkpoints(100)
    assert w[:3] == [0, 22, 41] and w[-1] <= 100


@pytest.mark.parametrize("attack", ATTACKS)
def test_attacks_stay_in_ball_and_range(trained, attack):
    model, x, y = trained
    eps = 0.03
    adv = run_attack(model, x, y, attack, eps, steps=5, restarts=2, queries=20,
                     generator=torch.Generator().manual_seed(0))
    assert adv.shape == x.shape
    assert (adv - x).abs().max() <= eps + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert model.training is False  # eval mode kept


def test_linear_model_optimal_attack_is_reached():
    # For a linear logit the worst case in the L-inf ball is x - (2y-1) eps sign(w) (no clamp).
    torch.manual_seed(0)
    model = Linear(12)
    x, y = torch.rand(16, 1, 3, 4), (torch.arange(16) % 2).float()
    eps = 0.05
    best = x - (2 * y - 1)[:, None, None, None] * eps * model.w.detach().sign().view(1, 1, 3, 4)
    target = margin(model(best), y)
    for attack in ("pgd-strong", "apgd"):
        adv = run_attack(model, x, y, attack, eps, steps=20, restarts=1, clamp=None)
        assert torch.allclose(margin(model(adv), y), target, atol=1e-4), attack
    # the gradient-free attack finds it too: every coordinate is a +-eps corner
    adv = square_attack(model, x, y, eps, queries=300, clamp=None, generator=torch.Generator().manual_seed(0))
    assert (margin(model(adv), y) >= target - 0.2 * eps * model.w.abs().sum()).all()


def test_strong_attacks_at_least_as_strong_as_pgd(trained):
    model, x, y = trained
    eps = 0.02
    base = margin(predict_logits(model, run_attack(model, x, y, "pgd", eps, steps=5)), y)
    for attack in ("apgd", "pgd-strong"):
        strong = margin(predict_logits(model, run_attack(model, x, y, attack, eps, steps=20, restarts=2)), y)
        assert strong.mean() >= base.mean() - 1e-3, attack


def test_zero_eps_is_identity(trained):
    model, x, y = trained
    for attack in ATTACKS:
        assert torch.equal(run_attack(model, x, y, attack, 0.0, steps=2, queries=2), x)


def test_bad_arguments(trained):
    model, x, y = trained
    with pytest.raises(ValueError):
        run_attack(model, x, y, "cw", 0.1)
    with pytest.raises(ValueError):
        apgd_attack(model, x, y, 0.1, loss="dlr")
    with pytest.raises(ValueError):
        square_attack(model, x, y, -1.0)
