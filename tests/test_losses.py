import math

import pytest
import torch

from arfl_studio.training import bernoulli_kl, robust_loss, to_signed_labels, trades_kl


def sig(v):
    return 1.0 / (1.0 + math.exp(-v))


def test_paper_variant_matches_eq1_by_hand():
    # two samples, 2 channels x 1 x 2 positions
    f = torch.tensor([[[[1.0, -2.0]], [[0.5, 0.0]]], [[[3.0, 1.0]], [[-1.0, 2.0]]]])
    y = torch.tensor([1.0, -1.0])
    per_sample = [
        (sig(1) + sig(2) + sig(0.5) + sig(0)) / 4,
        (sig(3) + sig(1) + sig(1) + sig(2)) / 4,
    ]
    expected = -(per_sample[0] + per_sample[1]) / 2
    assert robust_loss(f, y, "paper").item() == pytest.approx(expected, abs=1e-6)


def test_paper_variant_ignores_the_label_as_printed():
    f = torch.randn(8, 4, 3, 3)
    y = torch.tensor([1.0, -1, 1, -1, 1, 1, -1, -1])
    assert robust_loss(f, y).item() == pytest.approx(robust_loss(f, -y).item())


def test_batch_correlation_uses_the_batch_mean_before_abs():
    f = torch.tensor([[2.0, 1.0], [2.0, -1.0]])  # (N=2, D=2)
    y = torch.tensor([1.0, -1.0])
    # E[f*y] per position: (2-2)/2 = 0 and (1+1)/2 = 1
    expected = -(sig(0) + sig(1)) / 2
    assert robust_loss(f, y, "batch-correlation").item() == pytest.approx(expected, abs=1e-6)


def test_signed_variant_depends_on_the_label():
    f = torch.tensor([[3.0], [3.0]])
    y_agree, y_disagree = torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])
    assert robust_loss(f, y_agree, "signed").item() == pytest.approx(-sig(3))
    assert robust_loss(f, y_disagree, "signed").item() == pytest.approx(-sig(-3))


def test_ensemble_dims_average_like_separate_models():
    f = torch.randn(3, 5, 4)
    y = torch.where(torch.rand(3, 5) > 0.5, 1.0, -1.0)
    for variant in ("paper", "batch-correlation", "signed"):
        separate = torch.stack([robust_loss(f[m], y[m], variant) for m in range(3)]).mean()
        assert robust_loss(f, y, variant).item() == pytest.approx(separate.item(), abs=1e-6)


def test_bad_labels_and_variants_are_refused():
    with pytest.raises(ValueError, match=r"\{-1, \+1\}"):
        robust_loss(torch.randn(2, 3), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="robust_variant"):
        robust_loss(torch.randn(2, 3), torch.tensor([1.0, -1.0]), "mystery")


def test_signed_labels():
    assert to_signed_labels(torch.tensor([0.0, 1.0])).tolist() == [-1.0, 1.0]


def test_trades_kl_is_zero_for_identical_outputs_and_positive_otherwise():
    z = torch.randn(16)
    assert trades_kl(z, z.clone()).item() == pytest.approx(0.0, abs=1e-7)
    assert trades_kl(z, z + 1.0).item() > 0


def test_bernoulli_kl_matches_the_definition():
    p, q = torch.tensor([0.3]), torch.tensor([-1.2])
    sp, sq = torch.sigmoid(p), torch.sigmoid(q)
    expected = sp * torch.log(sp / sq) + (1 - sp) * torch.log((1 - sp) / (1 - sq))
    assert bernoulli_kl(p, q).item() == pytest.approx(expected.item(), abs=1e-6)
