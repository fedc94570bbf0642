"""Scores and the metrics the paper reports (AUC; accuracy for two-moon)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import roc_auc_score


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    from arfl_studio.training.attacks import attack_mode

    with attack_mode(model):
        return torch.cat([model(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


def roc_auc(targets, scores) -> float:
    """ROC AUC; NaN when only one class is present (a fold can be that small)."""
    targets, scores = np.asarray(targets), np.asarray(scores)
    if len(np.unique(targets)) < 2:
        return float("nan")
    return float(roc_auc_score(targets, scores))


def accuracy(targets, logits, threshold: float = 0.0) -> float:
    return float(np.mean((np.asarray(logits) > threshold) == (np.asarray(targets) > 0.5)))
