"""Losses of the paper: L_cls (BCE on one logit), L_robust (Eq. 1) and TRADES' KL.

All functions accept optional leading "ensemble" dimensions: a tensor of logits
of shape ``(..., N)`` pairs with features of shape ``(..., N, *feature_shape)``.
That lets several independent networks (seeds) train as one batched network.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ROBUST_VARIANTS = ("paper", "batch-correlation", "signed")


def to_signed_labels(targets: torch.Tensor) -> torch.Tensor:
    """{0, 1} BCE targets -> {-1, +1} labels as used in Eq. 1."""
    return targets * 2.0 - 1.0


def classification_loss(logits: torch.Tensor, targets: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """L_cls: binary cross-entropy on one logit, targets in {0, 1}, mean over samples.

    ``pos_weight`` multiplies the malignant samples' term (BCE's ``pos_weight``; the
    runner sets negatives / positives of the training fold, so both classes weigh
    the same in total on an imbalanced fold).
    """
    weight = None if pos_weight is None else torch.tensor(float(pos_weight), dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=weight)


POS_WEIGHT_SETTINGS = ("auto", "off")


def fold_pos_weight(setting: str | float, positives: int, negatives: int) -> float | None:
    """BCE ``pos_weight`` for a training fold: "auto" (default) negatives / positives when the
    classes differ in size, "off" (plain BCE), or a fixed number > 0. None means unweighted."""
    if setting == "off":
        return None
    if setting == "auto":
        if positives == 0 or negatives == 0 or positives == negatives:
            return None
        return negatives / positives
    return float(setting)


def robust_loss(features: torch.Tensor, y: torch.Tensor, variant: str = "paper") -> torch.Tensor:
    """L_robust of Eq. 1 and two label-aware readings of it.

    ``features``: ``(N, C, H, W)`` from a CNN's feature layer or ``(N, D)`` from an
    MLP's (with optional leading ensemble dims). ``y``: labels in {-1, +1}, shape
    ``(N,)`` (or ``(..., N)``).

    - ``paper``: -mean sigma(|f * y|) over channels, positions and samples, exactly
      as printed. Since |y| = 1 this equals -mean sigma(|f|): it does not use the label.
    - ``batch-correlation`` (our extension): the rho-usefulness of Ilyas et al. that the
      paper cites, E_batch[f * y] per feature position, then -mean sigma(|.|).
    - ``signed`` (our extension): -mean sigma(y * f), rewarding features that agree in
      sign with the label.
    """
    if variant not in ROBUST_VARIANTS:
        raise ValueError(f"robust_variant must be one of {ROBUST_VARIANTS}, got {variant!r}")
    if not torch.all((y == 1) | (y == -1)):
        raise ValueError("robust_loss expects labels y in {-1, +1}; convert 0/1 targets with to_signed_labels")
    if features.shape[: y.dim()] != y.shape:
        raise ValueError(f"features {tuple(features.shape)} do not start with the label shape {tuple(y.shape)}")
    batch_axis = y.dim() - 1
    y = y.to(features.dtype).reshape(y.shape + (1,) * (features.dim() - y.dim()))
    product = features * y
    if variant == "paper":
        return -torch.sigmoid(product.abs()).mean()
    if variant == "signed":
        return -torch.sigmoid(product).mean()
    correlation = product.mean(dim=batch_axis)  # expectation over the batch axis
    return -torch.sigmoid(correlation.abs()).mean()


def bernoulli_kl(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Per-sample KL(Bern(sigmoid(p)) || Bern(sigmoid(q))) for one-logit models."""
    log_p1, log_p0 = F.logsigmoid(logits_p), F.logsigmoid(-logits_p)
    log_q1, log_q0 = F.logsigmoid(logits_q), F.logsigmoid(-logits_q)
    p1 = torch.sigmoid(logits_p)
    return p1 * (log_p1 - log_q1) + (1.0 - p1) * (log_p0 - log_q0)


def trades_kl(clean_logits: torch.Tensor, adversarial_logits: torch.Tensor) -> torch.Tensor:
    """TRADES' regulariser: mean KL(clean output || adversarial output)."""
    return bernoulli_kl(clean_logits, adversarial_logits).mean()
