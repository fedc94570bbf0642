"""Small synthetic images, a quickly trained tiny CNN, and a deliberately
gradient-masked wrapper — to exercise (and demonstrate) the attack evaluation and
its sanity checks without any dataset.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from arfl_studio.models.image import small_cnn


def blob_images(n: int, size: int = 32, channels: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy grey images in [0, 1]; label 1 images carry a bright Gaussian blob."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.arange(n) % 2).float()[torch.randperm(n, generator=g)]
    x = torch.rand(n, 1, size, size, generator=g) * 0.3 + 0.2
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    margin = max(size // 4, 1)
    centres = torch.randint(margin, size - margin, (n, 2), generator=g)
    d2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    x[:, 0] += 0.4 * y[:, None, None] * torch.exp(-d2.float() / (size / 3.2))
    return x.clamp(0, 1).repeat(1, channels, 1, 1), y


def train_tiny_cnn(
    x: torch.Tensor, y: torch.Tensor, epochs: int = 8, width: int = 8, lr: float = 3e-3, batch_size: int = 32, seed: int = 0
) -> nn.Module:
    """Standard (non-robust) training of a small_cnn with BCE; returns it in eval mode."""
    torch.manual_seed(seed)
    model = small_cnn(x.shape[1], width)
    opt = torch.optim.Adam(model.parameters(), lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            loss = F.binary_cross_entropy_with_logits(model(x[idx]), y[idx].float())
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


class QuantizedInput(nn.Module):
    """Gradient masking on purpose: a hard step (quantisation) before the model.

    ``floor`` has zero gradient almost everywhere, so gradient attacks stall while the
    model stays exactly as vulnerable; the sanity checks should flag it.
    """

    def __init__(self, model: nn.Module, levels: int = 8):
        super().__init__()
        self.model, self.levels = model, levels
        self.feature_layer = getattr(model, "feature_layer", "model")

    def forward(self, x: torch.Tensor, return_features: bool = False):
        return self.model(torch.floor(x * self.levels) / self.levels, return_features=return_features)


class StaircaseInput(nn.Module):
    """Partial gradient masking on purpose: a saturating staircase (sum of tanh(sharpness * (x - k/levels))).

    The staircase is differentiable, but tanh saturates to exactly +-1 in float32 a
    little away from each step, so most pixels get an input gradient of exactly 0 and
    the rest point only towards the nearest step; gradient attacks mostly stall.
    """

    def __init__(self, model: nn.Module, levels: int = 8, sharpness: float = 1000.0):
        super().__init__()
        self.model, self.levels, self.sharpness = model, levels, sharpness
        self.feature_layer = getattr(model, "feature_layer", "model")

    def forward(self, x: torch.Tensor, return_features: bool = False):
        steps = torch.arange(1, self.levels, device=x.device, dtype=x.dtype) / self.levels
        q = (torch.tanh(self.sharpness * (x.unsqueeze(-1) - steps)) + 1).sum(-1) / (2 * (self.levels - 1))
        return self.model(q, return_features=return_features)


class ScaledLogit(nn.Module):
    """The same model with its logit multiplied by ``scale``: identical decisions, BCE gradients that underflow."""

    def __init__(self, model: nn.Module, scale: float = 1e4):
        super().__init__()
        self.model, self.scale = model, scale
        self.feature_layer = getattr(model, "feature_layer", "model")

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if return_features:
            logits, features = self.model(x, return_features=True)
            return logits * self.scale, features
        return self.model(x) * self.scale
