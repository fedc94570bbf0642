"""What a fold trains with besides its data: the optimizer, the learning-rate schedule, and the
layers kept in eval mode while training (frozen batch norm, no dropout)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.training.methods import SettingError


def keep_layers_in_eval(model: nn.Module, batchnorm: bool, dropout: bool) -> None:
    """Frozen batch norm (running statistics, not updated) and/or no dropout while training."""
    kinds: list[type] = []
    if batchnorm:
        kinds.append(nn.modules.batchnorm._BatchNorm)
    if not dropout:
        kinds.append(nn.modules.dropout._DropoutNd)
    if not kinds:
        return
    modules = [m for m in model.modules() if isinstance(m, tuple(kinds))]

    def hook(_module, _args):
        for module in modules:
            module.training = False

    model.register_forward_pre_hook(hook)


def make_optimizer(model: nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise SettingError("the model has no trainable parameters (check [model] fine_tune)")
    t = config.training
    if t.optimizer == "sgd":
        return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)


def epoch_lr(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of (0-based) ``epoch``: constant, or cosine-annealed towards 0 over ``epochs``."""
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / max(epochs, 1)))
    return lr
