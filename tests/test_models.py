"""Image models: one logit, a declared feature layer, normalisation inside, fine-tuning, dual BN, checkpoints."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn as nn
import torchvision

from arfl_studio.models import (
    CheckpointError,
    ModelSpec,
    PretrainedWeightsMissing,
    bn_route,
    build_model,
    has_dual_bn,
    load_checkpoint,
    save_checkpoint,
)
from arfl_studio.models.dual_bn import DualBatchNorm2d
from arfl_studio.models.image import imagenet_weights_file


@pytest.mark.parametrize("backbone", ["small_cnn", "vgg16", "vgg16_bn", "resnet18", "resnet50"])
def test_one_logit_and_feature_layer(backbone):
    model = build_model(ModelSpec(backbone=backbone, in_channels=3)).eval()
    assert isinstance(model.feature_layer, str) and model.feature_layer
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        again, features = model(x, return_features=True)
    assert logits.shape == (2,) and torch.allclose(logits, again)
    assert features.dim() == 4 and features.shape[0] == 2  # (N, C, H, W) of the last conv layer


def test_small_cnn_grayscale_pre_and_post_features():
    for features in ("post", "pre"):
        model = build_model(ModelSpec(in_channels=1, width=4, features=features)).eval()
        logits, f = model(torch.rand(3, 1, 32, 32), return_features=True)
        assert logits.shape == (3,) and f.shape[:2] == (3, 16)
    post = build_model(ModelSpec(in_channels=1, width=4, features="post")).eval()
    assert (post(torch.rand(2, 1, 32, 32), return_features=True)[1] >= 0).all()  # after ReLU


def test_normalisation_is_inside_the_model():
    model = build_model(ModelSpec(backbone="vgg16"))
    assert hasattr(model, "normalize")
    x = torch.rand(1, 3, 32, 32)
    expected = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(model.normalize(x), expected)


def _fake_imagenet_file(backbone: str, path):
    net = getattr(torchvision.models, backbone)(weights=None)
    torch.save(net.state_dict(), path)
    return net


def test_paper_fine_tuning_trains_last_conv_and_classifier_only(tmp_path):
    weights = tmp_path / "vgg16.pth"
    net = _fake_imagenet_file("vgg16", weights)
    model = build_model(ModelSpec(backbone="vgg16", weights_path=str(weights), fine_tune="paper"))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"body.28.weight", "body.28.bias"} | {n for n, _ in model.head.named_parameters(prefix="head")}
    assert torch.equal(model.body[0].weight, net.features[0].weight)  # ImageNet weights were loaded
    assert "features[28]" in model.feature_layer


def test_resnet_weights_file_and_grayscale_first_conv(tmp_path):
    weights = tmp_path / "r18.pth"
    net = _fake_imagenet_file("resnet18", weights)
    model = build_model(ModelSpec(backbone="resnet18", in_channels=1, weights_path=str(weights)))
    assert model.body[0].in_channels == 1
    assert torch.allclose(model.body[0].weight, net.conv1.weight.sum(1, keepdim=True) / 1)
    frozen = [m for m in model.modules() if type(m).__name__ == "FrozenBatchNorm2d"]
    assert frozen, "frozen BN layers must not move in model.train()"


def test_missing_imagenet_weights_are_never_silently_replaced(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(PretrainedWeightsMissing) as info:
        build_model(ModelSpec(backbone="vgg16", pretrained=True))
    message = str(info.value)
    assert "never downloads" in message and str(imagenet_weights_file("vgg16")) in message
    assert "weights_path" in message


def test_dual_bn_routes_have_separate_statistics_and_affine_parameters():
    model = build_model(ModelSpec(backbone="vgg16_bn", dual_bn=True))
    duals = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    plain = [m for m in model.modules() if type(m) is nn.BatchNorm2d]
    assert has_dual_bn(model) and len(plain) == 2 * len(duals) == 2 * 13  # every BN has a clean and an adversarial copy
    assert duals and all(d.clean.weight is not d.adversarial.weight for d in duals)
    small = build_model(ModelSpec(width=4, dual_bn=True)).train()
    x = torch.rand(4, 3, 32, 32)
    with bn_route(small, "adversarial"):
        small(x)
    first = next(m for m in small.modules() if isinstance(m, DualBatchNorm2d))
    assert not torch.equal(first.adversarial.running_mean, first.clean.running_mean)
    assert first.route == "clean"


def test_checkpoint_round_trip(tmp_path):
    spec = ModelSpec(width=4, in_channels=1, dual_bn=True)
    model = build_model(spec).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, spec)
    assert path.with_suffix(".json").is_file()
    loaded, loaded_spec = load_checkpoint(path)
    assert loaded_spec == spec and not loaded.training
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x))


def test_checkpoints_that_are_not_plain_state_dicts_are_refused(tmp_path):
    spec = ModelSpec(width=4)
    model = build_model(spec)
    save_checkpoint(tmp_path / "m.pt", model, spec)
    (tmp_path / "m.pt.sha256").unlink()  # a file from elsewhere: no checksum to catch the swap first
    torch.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "m.pt")  # nested: not a state dict
    with pytest.raises(CheckpointError, match="not a plain state dict"):
        load_checkpoint(tmp_path / "m.pt")

    class Payload:
        def __reduce__(self):
            return (print, ("code ran",))

    (tmp_path / "m.pt").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(tmp_path / "m.pt")
    (tmp_path / "m.json").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "m.pt")
