import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from arfl_studio.models import ModelSpec, TwoMoonMLP, build_model
from arfl_studio.training import attack_mode, fgsm_attack, pgd_attack


def _bce(model, x, t):
    with torch.no_grad():
        return F.binary_cross_entropy_with_logits(model(x), t).item()


@pytest.fixture
def mlp_and_data():
    torch.manual_seed(1)
    model = TwoMoonMLP()
    x = torch.randn(64, 2)
    t = (torch.rand(64) > 0.5).float()
    return model, x, t


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_stay_in_the_ball_and_raise_the_loss(mlp_and_data, attack):
    model, x, t = mlp_and_data
    eps = 0.2
    if attack == "fgsm":
        x_adv = fgsm_attack(model, x, t, eps)
    else:
        x_adv = pgd_attack(model, x, t, eps, steps=10, restarts=2)
    assert (x_adv - x).abs().max().item() <= eps + 1e-6
    assert _bce(model, x_adv, t) > _bce(model, x, t)


def test_pgd_is_at_least_as_strong_as_fgsm(mlp_and_data):
    model, x, t = mlp_and_data
    fgsm = _bce(model, fgsm_attack(model, x, t, 0.3), t)
    pgd = _bce(model, pgd_attack(model, x, t, 0.3, steps=20, random_start=False), t)
    assert pgd >= fgsm - 1e-6


def test_restarts_keep_the_worst_case_per_sample(mlp_and_data):
    model, x, t = mlp_and_data
    gen = torch.Generator().manual_seed(0)
    one = pgd_attack(model, x, t, 0.3, steps=3, restarts=1, generator=gen)
    gen = torch.Generator().manual_seed(0)
    five = pgd_attack(model, x, t, 0.3, steps=3, restarts=5, generator=gen)  # first restart identical
    per_one = F.binary_cross_entropy_with_logits(model(one), t, reduction="none")
    per_five = F.binary_cross_entropy_with_logits(model(five), t, reduction="none")
    assert torch.all(per_five >= per_one - 1e-6)


def test_clamp_keeps_images_in_pixel_range():
    model = build_model(ModelSpec(backbone="small_cnn", width=4))
    x = torch.rand(4, 3, 16, 16)
    x[:, :, :4] = 0.0
    x[:, :, -4:] = 1.0
    t = torch.tensor([0.0, 1.0, 0.0, 1.0])
    x_adv = pgd_attack(model, x, t, 0.05, steps=3, clamp=(0.0, 1.0))
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6


def test_attack_restores_each_module_mode_and_never_touches_parameter_grads():
    model = build_model(ModelSpec(backbone="small_cnn", width=4))
    model.train()
    model.body[1].eval()  # a BN frozen on purpose
    x, t = torch.rand(4, 3, 16, 16), torch.tensor([0.0, 1.0, 0.0, 1.0])
    seen_modes = []
    hook = model.body[1].register_forward_hook(lambda m, i, o: seen_modes.append(model.training))
    pgd_attack(model, x, t, 0.01, steps=2)
    hook.remove()
    assert seen_modes and not any(seen_modes)  # eval while attacking
    assert model.training and not model.body[1].training  # each module's own mode back
    assert all(p.grad is None for p in model.parameters())


def test_attack_mode_restores_after_an_error():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    model.train()
    with pytest.raises(RuntimeError):
        with attack_mode(model):
            raise RuntimeError("boom")
    assert all(m.training for m in model.modules())


def test_zero_eps_returns_the_input(mlp_and_data):
    model, x, t = mlp_and_data
    assert torch.equal(pgd_attack(model, x, t, 0.0), x)
    assert torch.equal(fgsm_attack(model, x, t, 0.0), x)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"eps": -0.1}, "eps"), ({"eps": 0.1, "steps": 0}, "steps"), ({"eps": 0.1, "restarts": 0}, "restarts")],
)
def test_bad_attack_settings_name_the_setting(mlp_and_data, kwargs, message):
    model, x, t = mlp_and_data
    with pytest.raises(ValueError, match=message):
        pgd_attack(model, x, t, **kwargs)


def test_ensemble_attack_equals_separate_attacks():
    torch.manual_seed(3)
    ens = TwoMoonMLP(n_models=2, seeds=[1, 2])
    x = torch.randn(2, 32, 2)
    t = (torch.rand(2, 32) > 0.5).float()
    joint = fgsm_attack(ens, x, t, 0.1)
    for m in range(2):
        alone = fgsm_attack(ens.member(m), x[m], t[m], 0.1)
        assert torch.allclose(joint[m], alone, atol=1e-6)


def test_confidently_correct_samples_are_still_attacked():
    # BCE's input gradient is exactly 0 in float32 at logit 60; the attack must move anyway.
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[30.0, 30.0]]))
        model.bias.zero_()
    wrapped = lambda x: model(x).squeeze(-1)  # noqa: E731
    x, t = torch.ones(1, 2), torch.ones(1)
    x_fgsm = fgsm_attack(_Wrap(wrapped), x, t, 0.5)
    assert torch.allclose(x_fgsm, torch.full((1, 2), 0.5))
    x_pgd = pgd_attack(_Wrap(wrapped), x, t, 0.5, steps=5, random_start=False)
    assert torch.allclose(x_pgd, torch.full((1, 2), 0.5))


class _Wrap(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)
