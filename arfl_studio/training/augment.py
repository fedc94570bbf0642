"""Training-batch augmentation for mammograms (``[training] augment``), in torch on the batch.

What a few hundred films need to learn from (and what public mammography pipelines use): a
vertical flip (the breast stays against the chest wall on the left, so no left-right flip), a
small rotation, scale and shift, and a gamma/contrast change standing in for other exposures,
films and detectors. Applied to training batches only, before any attack, with the global
torch RNG that the training loop seeds per epoch, so a run (and a resumed run) is repeatable.
Pixels stay in [0, 1]; the black background stays black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTS = ("none", "standard")


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes; ``standard`` is the preset the real-data recipes use."""

    flip_vertical: bool = True
    rotate_deg: float = 10.0
    scale: float = 0.10  # zoom in [1 - scale, 1 + scale]
    shift: float = 0.05  # of the image size
    gamma: float = 0.25  # log-uniform in [1 / (1 + gamma), 1 + gamma]
    contrast: float = 0.10  # multiplied by [1 - contrast, 1 + contrast]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        device, dtype = x.device, x.dtype
        u = torch.rand(n, 6).to(device=device, dtype=dtype) * 2 - 1  # one row of draws per image
        angle = u[:, 0] * math.radians(self.rotate_deg)
        zoom = 1 + u[:, 1] * self.scale
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, u[:, 2] * 2 * self.shift], 1), torch.stack([sin, cos, u[:, 3] * 2 * self.shift], 1)], 1
        )
        if self.flip_vertical:
            flip = (torch.rand(n) < 0.5).to(device=device, dtype=dtype) * -2 + 1
            theta[:, 1, :] = theta[:, 1, :] * flip[:, None]
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        gamma = torch.exp(u[:, 4] * math.log1p(self.gamma)).view(n, 1, 1, 1)
        out = out.clamp(0, 1).pow(gamma) * (1 + u[:, 5] * self.contrast).view(n, 1, 1, 1)
        return out.clamp(0, 1)


def augmentation(name: str) -> Augmentation | None:
    """The augmentation of ``[training] augment`` (None for ``"none"``)."""
    if name not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {name!r}")
    return Augmentation() if name == "standard" else None
