"""Image classifiers with one logit and a declared feature layer for L_robust.

Every model takes pixels in [0, 1] (normalisation is its first layer, so attacks
and epsilons live in pixel space) and splits into ``body`` (input -> output of the
last convolutional layer, the paper's feature map) and ``head`` (feature map ->
one logit). ``features="pre"`` takes the last conv layer's output before its
activation (and batch norm), ``"post"`` after it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torchvision.models as tvm
from torchvision.ops.misc import FrozenBatchNorm2d

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsMissing(FileNotFoundError):
    """ImageNet weights were asked for but are not on this machine."""


class Normalize(nn.Module):
    def __init__(self, mean, std, channels: int):
        super().__init__()
        mean, std = list(mean)[:channels], list(std)[:channels]
        if len(mean) < channels:  # e.g. grayscale into a 3-value statistic
            mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ImageClassifier(nn.Module):
    """normalise -> body (to the feature layer) -> rest -> one logit."""

    def __init__(self, normalize: nn.Module, body: nn.Module, rest: nn.Module, head: nn.Module, feature_layer: str):
        super().__init__()
        self.normalize, self.body, self.rest, self.head = normalize, body, rest, head
        self.feature_layer = feature_layer

    def forward(self, x: torch.Tensor, return_features: bool = False):
        features = self.body(self.normalize(x))
        logits = self.head(self.rest(features)).squeeze(-1)
        return (logits, features) if return_features else logits


def _conv_block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=False)]


def small_cnn(in_channels: int = 3, width: int = 16, features: str = "post") -> ImageClassifier:
    """Four conv blocks (16-32-64-64 by default): trains in minutes on a CPU."""
    widths = [width, width * 2, width * 4, width * 4]
    layers: list[nn.Module] = []
    cin = in_channels
    for i, cout in enumerate(widths):
        block = _conv_block(cin, cout)
        last = i == len(widths) - 1
        if last and features == "pre":
            layers.append(block[0])
            rest = nn.Sequential(*block[1:], nn.AdaptiveAvgPool2d(1), nn.Flatten())
        else:
            layers += block + ([] if last else [nn.MaxPool2d(2)])
        cin = cout
    if features == "post":
        rest = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    head = nn.Sequential(nn.Dropout(0.2), nn.Linear(cin, 1))
    norm = Normalize((0.5,), (0.25,), in_channels)
    return ImageClassifier(norm, nn.Sequential(*layers), rest, head, f"body[{len(layers) - 1}] (last conv block)")


_TORCHVISION = {
    "vgg16": (tvm.vgg16, tvm.VGG16_Weights.IMAGENET1K_V1),
    "vgg16_bn": (tvm.vgg16_bn, tvm.VGG16_BN_Weights.IMAGENET1K_V1),
    "resnet18": (tvm.resnet18, tvm.ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (tvm.resnet50, tvm.ResNet50_Weights.IMAGENET1K_V1),
}


def imagenet_weights_file(backbone: str) -> Path:
    """Where torchvision's download would have cached the ImageNet weights."""
    _, weights = _TORCHVISION[backbone]
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name


def load_imagenet_state(backbone: str, weights_path: str | Path | None = None) -> dict:
    """ImageNet weights from a file the user names or the torch hub cache; never downloads."""
    path = Path(weights_path) if weights_path else imagenet_weights_file(backbone)
    if not path.is_file():
        _, weights = _TORCHVISION[backbone]
        raise PretrainedWeightsMissing(
            f"ImageNet weights for {backbone} were not found at {path}. ARFL Studio never downloads "
            f"them at run time and will not silently train from scratch. Get {Path(weights.url).name} "
            f"from {weights.url} (or run `python -c \"import torchvision; torchvision.models.{backbone}"
            f"(weights='IMAGENET1K_V1')\"` on a machine with internet access), then copy it to "
            f"{imagenet_weights_file(backbone)} or pass its path as weights_path; or set pretrained = false."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def _adapt_first_conv(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    if in_channels == conv.in_channels:
        return conv
    new = nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=conv.bias is not None)
    with torch.no_grad():  # grayscale: the sum of the RGB filters sees the same response
        new.weight.copy_(conv.weight.sum(dim=1, keepdim=True).repeat(1, in_channels, 1, 1) / in_channels)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def torchvision_classifier(
    backbone: str,
    in_channels: int = 3,
    pretrained: bool = False,
    weights_path: str | Path | None = None,
    fine_tune: str = "auto",
    features: str = "post",
) -> ImageClassifier:
    """VGG16 / VGG16-BN / ResNet-18 / ResNet-50 with one logit.

    ``fine_tune="paper"`` trains the last conv layer and the fully connected layers
    and freezes the rest (as in the paper); ``"head"`` only the classifier; ``"all"``
    everything; ``"auto"`` is ``"paper"`` with ImageNet weights and ``"all"`` without
    (freezing random filters would make no sense).
    """
    if backbone not in _TORCHVISION:
        raise ValueError(f"backbone must be one of {sorted(_TORCHVISION)} or 'small_cnn', got {backbone!r}")
    if fine_tune not in ("auto", "paper", "head", "all"):
        raise ValueError(f"fine_tune must be 'auto', 'paper', 'head' or 'all', got {fine_tune!r}")
    if fine_tune == "auto":
        fine_tune = "paper" if (pretrained or weights_path) else "all"
    build, _ = _TORCHVISION[backbone]
    net = build(weights=None)
    for module in net.modules():  # the feature map is returned as well as used: no in-place ops
        if isinstance(module, nn.ReLU):
            module.inplace = False
    if pretrained or weights_path:
        net.load_state_dict(load_imagenet_state(backbone, weights_path))
    norm = Normalize(IMAGENET_MEAN, IMAGENET_STD, in_channels)
    if backbone.startswith("vgg"):
        net.features[0] = _adapt_first_conv(net.features[0], in_channels)
        convs = [i for i, m in enumerate(net.features) if isinstance(m, nn.Conv2d)]
        last_conv = convs[-1]
        pool = len(net.features) - 1  # the final max-pool
        cut = last_conv + 1 if features == "pre" else pool
        body = net.features[:cut]
        rest = nn.Sequential(*net.features[cut:], net.avgpool, nn.Flatten())
        net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, 1)
        head = net.classifier
        tuned = [net.features[i] for i in range(last_conv, pool)]  # last conv (+ its BN)
        name = f"features[{last_conv}] (last conv, {'before' if features == 'pre' else 'after'} activation)"
    else:
        if features == "pre":
            raise ValueError("ResNet backbones expose the last block's output only (features='post')")
        net.conv1 = _adapt_first_conv(net.conv1, in_channels)
        body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
        rest = nn.Sequential(net.avgpool, nn.Flatten())
        head = nn.Linear(net.fc.in_features, 1)
        tuned = [net.layer4[-1]]
        name = "layer4 (last residual block)"
    model = ImageClassifier(norm, body, rest, head, name)
    if fine_tune != "all":
        for p in model.body.parameters():
            p.requires_grad_(False)
        if fine_tune == "paper":
            for module in tuned:
                for p in module.parameters():
                    p.requires_grad_(True)
        _freeze_frozen_batchnorm(model)
    return model


def _freeze_frozen_batchnorm(module: nn.Module) -> None:
    """Frozen BN layers become FrozenBatchNorm2d, so ``model.train()`` cannot move their statistics."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d) and not any(p.requires_grad for p in child.parameters()):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            _freeze_frozen_batchnorm(child)
