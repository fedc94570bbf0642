import pytest
import torch

import arfl_studio.training.objective as objective
from arfl_studio.models import ModelSpec, TwoMoonMLP, build_model
from arfl_studio.training import (
    AttackSettings,
    MethodSettings,
    SettingError,
    classification_loss,
    compute_loss,
    paper_method,
    robust_loss,
    to_signed_labels,
)

FGSM = AttackSettings(kind="fgsm", eps=0.05, clamp=None)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    return TwoMoonMLP(), torch.randn(32, 2), (torch.rand(32) > 0.5).float()


class CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x, return_features=False):
        self.calls += 1
        return self.inner(x, return_features=return_features)


def test_r_equal_one_never_calls_the_attack(batch, monkeypatch):
    model, x, t = batch

    def forbidden(*a, **k):
        raise AssertionError("the attack ran for r = 1")

    monkeypatch.setattr(objective, "make_adversarial", forbidden)
    compute_loss(model, x, t, paper_method("B", robust_weight=0.5, attack=FGSM))


def test_r_equal_zero_skips_the_clean_pass(batch, monkeypatch):
    model, x, t = batch
    seen = []
    real = objective._term
    monkeypatch.setattr(objective, "_term", lambda m, inp, *a, **k: (seen.append(inp), real(m, inp, *a, **k))[1])
    terms = compute_loss(model, x, t, paper_method("C", attack=FGSM))
    assert len(seen) == 1 and not torch.equal(seen[0], x)
    assert "cls_clean" not in terms.parts


def test_mix_loss_is_the_weighted_sum_of_eq5(batch):
    model, x, t = batch
    lam, r = 0.5, 0.25
    method = MethodSettings(mix_ratio=r, robust_weight=lam, attack=FGSM)
    x_adv = objective.make_adversarial(model, x, t, FGSM)
    y = to_signed_labels(t)

    def part(inp, sign):
        logits, feats = model(inp, return_features=True)
        return classification_loss(logits, t) + sign * lam * robust_loss(feats, y)

    for sign_name, sign in (("consistent", 1.0), ("as-printed", -1.0)):
        m = MethodSettings(mix_ratio=r, robust_weight=lam, attack=FGSM, eq5_sign=sign_name)
        expected = (1 - r) * part(x_adv, sign) + r * part(x, 1.0)
        assert compute_loss(model, x, t, m).total.item() == pytest.approx(expected.item(), abs=1e-6)
    assert method.uses_arfl


def test_arfl_off_equals_plain_bce(batch):
    model, x, t = batch
    terms = compute_loss(model, x, t, paper_method("A"))
    assert terms.total.item() == pytest.approx(classification_loss(model(x), t).item())
    assert set(terms.parts) == {"cls_clean", "total"}


def test_trades_and_mirst_report_their_terms(batch):
    model, x, t = batch
    trades = compute_loss(model, x, t, paper_method("H", attack=FGSM))
    assert {"cls_clean", "trades_kl"} <= set(trades.parts) and trades.parts["trades_kl"] >= 0
    mirst = compute_loss(model, x, t, paper_method("I", attack=FGSM))
    assert sum(k.startswith("cls_adversarial@") for k in mirst.parts) == 3


def test_dsbn_trains_the_adversarial_batch_norm_only_on_adversarial_data():
    model = build_model(ModelSpec(backbone="small_cnn", width=4, dual_bn=True))
    x, t = torch.rand(4, 3, 16, 16), torch.tensor([0.0, 1.0, 0.0, 1.0])
    method = paper_method("G", attack=AttackSettings(eps=0.03, steps=2))
    before = {n: b.clone() for n, b in model.named_buffers() if "running_mean" in n}
    model.train()
    compute_loss(model, x, t, method).total.backward()
    changed = {n for n, b in model.named_buffers() if "running_mean" in n and not torch.equal(b, before[n])}
    assert any(".clean." in n for n in changed) and any(".adversarial." in n for n in changed)
    dual = [m for m in model.modules() if type(m).__name__ == "DualBatchNorm2d"]
    assert dual and all(m.route == "clean" for m in dual)  # deployed route restored


def test_dsbn_without_dual_bn_is_refused(batch):
    model, x, t = batch
    with pytest.raises(SettingError, match="dual batch norms"):
        compute_loss(model, x, t, paper_method("G"))


@pytest.mark.parametrize(
    "change, setting",
    [
        ({"mix_ratio": 1.5}, "mix_ratio r must be in \\[0, 1\\]"),
        ({"mix_ratio": -0.1}, "mix_ratio"),
        ({"robust_weight": -1.0}, "robust_weight lambda must be >= 0"),
        ({"scheme": "magic"}, "scheme must be one of"),
        ({"robust_variant": "x"}, "robust_variant"),
        ({"eq5_sign": "plus"}, "eq5_sign"),
        ({"attack": AttackSettings(eps=-0.01)}, "eps"),
        ({"attack": AttackSettings(steps=0)}, "steps must be >= 1"),
        ({"attack": AttackSettings(kind="cw")}, "attack must be one of"),
    ],
)
def test_invalid_settings_name_the_setting_and_range(change, setting):
    with pytest.raises(SettingError, match=setting):
        MethodSettings(**change).validate()


def test_unknown_paper_row_is_refused():
    with pytest.raises(SettingError, match="unknown method 'Z'"):
        paper_method("Z")


def test_method_round_trips_through_a_dict():
    method = paper_method("F", robust_weight=10.0)
    assert MethodSettings.from_dict(method.to_dict()) == method
    with pytest.raises(SettingError, match="unknown method settings"):
        MethodSettings.from_dict({"mix_ratio": 0.5, "lamda": 3})


def test_trades_attack_leaves_the_clean_point_even_with_fgsm(batch, monkeypatch):
    # KL(p(x) || p(x')) has zero gradient at x' = x: plain FGSM from x would not move.
    model, x, t = batch
    made = []
    real = objective.make_adversarial
    monkeypatch.setattr(objective, "make_adversarial", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    compute_loss(model, x, t, paper_method("H", attack=FGSM))
    moved = (made[0] - x).abs().amax(dim=1)
    assert (moved > 0.5 * FGSM.eps).float().mean() > 0.9
    assert moved.max() <= FGSM.eps + 1e-6
