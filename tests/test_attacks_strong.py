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
    adv = run_attack(model, x, y, attack, eps, steps=5, restarts=2, queries=20, generator=torch.Generator().manual_seed(0))
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


def _metrics(model, adv, y):
    from arfl_studio.evaluation.report import threshold_metrics

    return threshold_metrics(y.numpy(), predict_logits(model, adv).numpy())


def test_apgd_default_matches_strong_pgd_when_logits_are_huge(trained):
    # Logits x 1e4: BCE's gradient is exactly 0 in float32 for every confident sample, so APGD-CE
    # (AutoAttack's loss) stalls; the margin (APGD's default) moves them like strong PGD does.
    from arfl_studio.evaluation.synthetic import ScaledLogit

    model, x, y = trained
    scaled = ScaledLogit(model, 1e4)
    eps = 0.03
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    pgd = _metrics(scaled, run_attack(scaled, x, y, "pgd-strong", eps, steps=20, restarts=2, generator=gen()), y)
    apgd = _metrics(scaled, run_attack(scaled, x, y, "apgd", eps, steps=20, generator=gen()), y)
    ce = _metrics(scaled, run_attack(scaled, x, y, "apgd", eps, steps=20, loss="ce", generator=gen()), y)
    assert abs(apgd["accuracy"] - pgd["accuracy"]) <= 0.01 and abs(apgd["auc"] - pgd["auc"]) <= 0.01
    assert ce["accuracy"] > pgd["accuracy"] + 0.1  # the phantom reproduces the APGD-CE failure


def test_apgd_both_losses_keep_the_worse_case_per_sample(trained):
    model, x, y = trained
    alone = apgd_attack(model, x, y, 0.02, steps=5, loss="margin", generator=torch.Generator().manual_seed(0))
    both = apgd_attack(model, x, y, 0.02, steps=5, loss="both", generator=torch.Generator().manual_seed(0))
    m_alone, m_both = margin(predict_logits(model, alone), y), margin(predict_logits(model, both), y)
    assert torch.all(m_both >= m_alone - 1e-5)  # the margin run is the same; CE can only add


def test_worst_ensemble_is_never_weaker_than_a_member_per_sample(trained):
    from arfl_studio.evaluation.report import threshold_metrics

    model, x, y = trained
    members = {}
    adv = run_attack(
        model, x, y, "worst", 0.02, steps=5, restarts=2, queries=30, members_out=members, generator=torch.Generator().manual_seed(0)
    )
    assert set(members) == {"pgd-strong", "apgd", "square"}
    worst_z = predict_logits(model, adv)
    worst = margin(worst_z, y)
    ensemble = threshold_metrics(y.numpy(), worst_z.numpy())
    for name, x_m in members.items():
        z = predict_logits(model, x_m)
        assert torch.all(worst >= margin(z, y) - 1e-6), name
        alone = threshold_metrics(y.numpy(), z.numpy())
        assert ensemble["auc"] <= alone["auc"] + 1e-9 and ensemble["accuracy"] <= alone["accuracy"] + 1e-9, name
    assert (adv - x).abs().max() <= 0.02 + 1e-6 and adv.min() >= 0 and adv.max() <= 1


def test_every_attack_reports_each_step_by_name(trained):
    model, x, y = trained
    seen = []
    run_attack(
        model,
        x[:4],
        y[:4],
        "worst",
        0.02,
        steps=3,
        restarts=2,
        queries=5,
        on_step=lambda name, done, total: seen.append((name, done, total)),
    )
    assert [s for s in seen if s[0] == "pgd-strong"][-1] == ("pgd-strong", 6, 6)
    assert [s for s in seen if s[0] == "apgd"][-1] == ("apgd", 3, 3)
    assert [s for s in seen if s[0] == "square"] == [("square", i, 5) for i in range(1, 6)]
    more = [s for s in seen if s[0] == "square-unbroken"]  # AutoAttack's budget on the images still unbroken
    assert not more or more[-1] == ("square-unbroken", 5000, 5000)


def test_fgsm_and_pgd_called_directly_clamp_images_but_not_feature_vectors():
    from arfl_studio.training.attacks import fgsm_attack, pgd_attack

    model = Linear(12)
    x, y = torch.rand(16, 1, 3, 4), (torch.arange(16) % 2).float()
    for adv in (fgsm_attack(model, x, y, 0.5), pgd_attack(model, x, y, 0.5, steps=3)):
        assert adv.min() >= 0 and adv.max() <= 1
    two_moon_like = _Fn(lambda v: v.sum(-1))  # logit rises with both coordinates
    pts = torch.full((8, 2), 0.9)
    adv = fgsm_attack(two_moon_like, pts, torch.zeros(8), 0.5)  # label 0: push the logit up
    assert torch.allclose(adv, torch.full((8, 2), 1.4))  # raw coordinates: not clamped to [0, 1]
    with pytest.raises(ValueError, match="clamp"):
        fgsm_attack(model, x, y, 0.1, clamp="pixels")


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class MeanLogit(nn.Module):
    """z = b + 100 (mean(x) - 0.5): the worst case at eps lowers z of a positive by exactly 100 eps."""

    def __init__(self, bias):
        super().__init__()
        self.bias = bias

    def forward(self, x, return_features=False):
        return self.bias + 100 * (x.flatten(1).mean(1) - 0.5)


@pytest.mark.parametrize("bias", [0.0, 16.0, 17.0, 40.0])
def test_apgd_moves_confident_positives_the_full_distance(bias):
    # BCE's gradient is exactly 0 in float32 from z ~ 17 on: APGD-CE moved such a point by 0.18 (random start only).
    model = MeanLogit(bias)
    x, y = torch.full((4, 1, 8, 8), 0.5), torch.ones(4)
    for attack in ("apgd", "pgd-strong", "worst"):
        adv = run_attack(model, x, y, attack, 0.03, steps=10, restarts=1, queries=10, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(model(x) - model(adv), torch.full((4,), 3.0), atol=1e-3), attack


def test_worst_on_a_staircase_model_is_as_strong_as_autoattack_square():
    """Issue 27: on a model that masks gradients, `worst` gives Square at least AutoAttack's 5,000
    queries on the images still unbroken, and leaves no more images unbroken than that Square."""
    from arfl_studio.evaluation.attacks import AUTOATTACK_SQUARE_QUERIES
    from arfl_studio.evaluation.synthetic import StaircaseInput

    torch.manual_seed(0)
    x, y = blob_images(96, size=12, seed=1)
    model = StaircaseInput(train_tiny_cnn(x, y, epochs=8, width=4))
    xt, yt = blob_images(16, size=12, seed=2)
    eps = 0.035

    def unbroken(adv):
        return int((margin(predict_logits(model, adv), yt) <= 0).sum())

    seen = []
    worst = run_attack(
        model,
        xt,
        yt,
        "worst",
        eps,
        steps=10,
        restarts=1,
        queries=1000,
        generator=torch.Generator().manual_seed(10),
        on_step=lambda *s: seen.append(s),
    )
    autoattack = square_attack(model, xt, yt, eps, queries=AUTOATTACK_SQUARE_QUERIES, generator=torch.Generator().manual_seed(0))
    assert ("square-unbroken", AUTOATTACK_SQUARE_QUERIES, AUTOATTACK_SQUARE_QUERIES) in seen
    assert unbroken(xt) > unbroken(autoattack)  # the attack has work to do
    assert unbroken(worst) <= unbroken(autoattack)
