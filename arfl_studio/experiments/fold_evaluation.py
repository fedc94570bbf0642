"""Held-out evaluation of a fold's model: standard AUC and AUC under the ``[evaluation]`` attack."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Sequence

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from arfl_studio.experiments.config import EvaluationConfig
from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.training import distributed as ddp
from arfl_studio.training.attacks import attack_mode, fgsm_attack, pgd_attack
from arfl_studio.training.metrics import roc_auc
from arfl_studio.training.threshold import operating_point


@torch.no_grad()
def _clean_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with attack_mode(model):
        return model(x).float()


def _attack(model: nn.Module, x: torch.Tensor, t: torch.Tensor, settings: EvaluationConfig, steps: int | None,
            generator: torch.Generator) -> torch.Tensor:
    clamp = tuple(settings.clamp) if settings.clamp is not None else None
    if settings.kind == "fgsm":
        return fgsm_attack(model, x, t, settings.eps, clamp=clamp)
    return pgd_attack(model, x, t, settings.eps, steps=steps or settings.steps, step_size=settings.step_size,
                      random_start=settings.random_start, restarts=settings.restarts, clamp=clamp, generator=generator)


def evaluate_auc(
    model: nn.Module,
    loader: Sequence | DataLoader,
    device: torch.device,
    settings: EvaluationConfig,
    *,
    adversarial: bool = True,
    steps: int | None = None,
    seed: int = 0,
    route: str = "clean",
    cancel: threading.Event | None = None,
    threshold: float | None = None,
    predictions: dict | None = None,
) -> dict[str, float]:
    """Standard AUC and (optionally) adversarial AUC under ``settings``' attack, through BN ``route``.

    With a decision ``threshold`` (a logit) also ``standard_``/``adversarial_`` sensitivity,
    specificity and accuracy of ``logit > threshold``. ``predictions`` (a dict) receives the
    per-image ``label``, ``clean_logit`` and ``adversarial_logit`` arrays in loader order.

    Attacks run in float32 (eps = 1e-4 is below float16's resolution near 1) with a
    generator of their own, so evaluating never moves the training RNG.
    """
    model = ddp.unwrap(model)
    generator = torch.Generator().manual_seed(seed)
    targets, clean, adv = [], [], []
    route_ctx = bn_route(model, route) if has_dual_bn(model) else nullcontext()
    with route_ctx:
        for x, t in loader:
            if cancel is not None and cancel.is_set():
                break
            x, t = x.to(device).float(), t.to(device).float()
            targets.append(t.cpu())
            clean.append(_clean_logits(model, x).cpu())
            if adversarial:
                x_adv = _attack(model, x, t, settings, steps, generator)
                adv.append(_clean_logits(model, x_adv).cpu())
    if not targets:
        return {}
    t = torch.cat(targets).numpy()
    if predictions is not None:
        predictions.update(label=t, clean_logit=torch.cat(clean).numpy().reshape(-1),
                           adversarial_logit=torch.cat(adv).numpy().reshape(-1) if adversarial else None)
    out = {"standard_auc": roc_auc(t, torch.cat(clean).numpy())}
    if adversarial:
        out["adversarial_auc"] = roc_auc(t, torch.cat(adv).numpy())
    if threshold is not None:
        for name, logits in (("standard", clean), ("adversarial", adv if adversarial else None)):
            if logits is not None:
                rates = operating_point(t, torch.cat(logits).numpy(), threshold)
                out.update({f"{name}_{k}": v for k, v in rates.items()})
    return out
