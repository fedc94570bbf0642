"""A lesion-aware, fully convolutional patch classifier (``backbone = "patch_fcn"``).

A small CNN slides over the whole mammogram and scores every patch (receptive field 71 px,
stride 8 px: 64-px patches at 0.4-0.8 mm are lesion-sized); the image's logit is the mean of
the ``top_k`` highest patch logits inside the breast (pixels above ``mask_level``; the
background of a "breast-only" input is 0). Shen et al. 2019 ("Deep learning to improve breast
cancer detection on screening mammography") train such a patch classifier on lesion vs
normal-tissue patches and build the whole-image model on it; on a few hundred films that
lesion supervision is what carries signal (DESIGN.md, "Learning from real mammograms").

The feature layer (``features``, the last conv block) is where ARFL's L_robust acts, as on
every other backbone. ``patch_mode`` switches the logit to the centre of the map, so the
patch stage (``training.patch_stage``) trains the same network on lesion-centred patches
with every method's loss and attack unchanged.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn

from arfl_studio.models.image import Normalize

NORMS = ("batch", "group")


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.GroupNorm(8, channels) if kind == "group" else nn.BatchNorm2d(channels)


def _block(cin: int, cout: int, norm: str, stride: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), _norm(norm, cout), nn.ReLU(inplace=False)]


class PatchScoreNet(nn.Module):
    """normalise -> body -> features (feature layer) -> 1x1 head = patch logit map -> top-k mean."""

    stride = 8  # input pixels per map cell

    def __init__(self, in_channels: int = 1, width: int = 32, norm: str = "batch", top_k: int = 10, mask_level: float = 0.02):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        w = width
        # zero stays zero: 0 is the blanked background, the letterbox and the convolutions' padding, so a
        # patch cut at the breast edge looks the same as that edge inside a whole image (a mean shift
        # would paint a grey frame around every patch and image)
        self.normalize = Normalize((0.0,), (0.25,), in_channels)
        self.body = nn.Sequential(
            *_block(in_channels, w // 2, norm, stride=2, kernel=5),  # receptive field 5, /2
            *_block(w // 2, w, norm),
            nn.MaxPool2d(2),  # 11, /4
            *_block(w, 2 * w, norm),
            nn.MaxPool2d(2),  # 23, /8
            *_block(2 * w, 2 * w, norm),  # 39
            *_block(2 * w, 4 * w, norm),  # 55
        )
        self.features = nn.Sequential(*_block(4 * w, 4 * w, norm))  # 71: the feature layer
        self.head = nn.Conv2d(4 * w, 1, 1)
        self.top_k, self.mask_level = int(top_k), float(mask_level)
        self.feature_layer = "features (last conv block)"
        self.patch_logit = False  # True inside patch_mode

    def logit_map(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(patch logits (N, h, w), features (N, C, h, w))."""
        features = self.features(self.body(self.normalize(x)))
        return self.head(features)[:, 0], features

    def breast_cells(self, x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
        """Map cells mostly on the breast (bool (N, h, w)); a blank image keeps every cell."""
        inside = (x[:, :1] > self.mask_level).float()
        cells = nn.functional.adaptive_avg_pool2d(inside, shape)[:, 0] > 0.5
        return cells | ~cells.flatten(1).any(1).view(-1, 1, 1)

    def pool(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.patch_logit:  # the 2x2 cells at the centre: the patch's own lesion
            h, w = logits.shape[-2:]
            return logits[:, max(h // 2 - 1, 0) : h // 2 + 1, max(w // 2 - 1, 0) : w // 2 + 1].flatten(1).mean(1)
        rows, cols = logits.shape[-2:]
        valid = self.breast_cells(x, (rows, cols))
        flat = logits.masked_fill(~valid, float("-inf")).flatten(1)
        k = min(self.top_k, flat.shape[1])
        top = flat.topk(k, dim=1).values
        counted = torch.arange(k, device=x.device)[None] < valid.flatten(1).sum(1, keepdim=True)
        return torch.where(counted, top, torch.zeros_like(top)).sum(1) / counted.sum(1).clamp(min=1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        logits, features = self.logit_map(x)
        z = self.pool(logits, x)
        return (z, features) if return_features else z


@contextmanager
def patch_mode(model: nn.Module):
    """Score patches (the logit at the map's centre) instead of whole images, for the patch stage."""
    net = getattr(model, "module", model)  # DDP wraps it
    previous = net.patch_logit
    net.patch_logit = True
    try:
        yield model
    finally:
        net.patch_logit = previous
