"""Held-out evaluation of a fold's model: standard AUC and AUC under the ``[evaluation]`` attack."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from arfl_studio.evaluation.units import aggregate
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


class _Stopped(Exception):
    """``cancel`` was seen between two attack steps."""


def _attack(
    model: nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    settings: EvaluationConfig,
    steps: int | None,
    generator: torch.Generator,
    cancel: threading.Event | None = None,
) -> torch.Tensor:
    def poll(*_step) -> None:  # a full-size batch's attack takes seconds on a CPU: Stop answers within a step
        if cancel is not None and cancel.is_set():
            raise _Stopped

    clamp = tuple(settings.clamp) if settings.clamp is not None else None
    if settings.kind == "fgsm":
        return fgsm_attack(model, x, t, settings.eps, clamp=clamp, on_step=poll)
    return pgd_attack(
        model,
        x,
        t,
        settings.eps,
        steps=steps or settings.steps,
        step_size=settings.step_size,
        random_start=settings.random_start,
        restarts=settings.restarts,
        clamp=clamp,
        generator=generator,
        on_step=poll,
    )


def score_logits(
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
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(targets, clean logits, attacked logits or None) of every image the ``loader`` yields, in order.

    ``cancel`` is polled per batch and between attack steps; a stopped evaluation returns None (never
    scores of part of the fold).

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
                return None  # stopped: no AUC of part of the images
            x, t = x.to(device).float(), t.to(device).float()
            targets.append(t.cpu())
            clean.append(_clean_logits(model, x).cpu())
            if adversarial:
                try:
                    x_adv = _attack(model, x, t, settings, steps, generator, cancel)
                except _Stopped:
                    return None
                adv.append(_clean_logits(model, x_adv).cpu())
    if not targets:
        return np.zeros(0), np.zeros(0), (np.zeros(0) if adversarial else None)

    def flat(parts: list[torch.Tensor]) -> np.ndarray:
        return torch.cat(parts).reshape(-1).numpy()

    return flat(targets), flat(clean), (flat(adv) if adversarial else None)


def auc_summary(targets: np.ndarray, clean: np.ndarray, adv: np.ndarray | None, threshold: float | None = None) -> dict[str, float]:
    """Standard (and adversarial) AUC of scored logits; with a ``threshold`` (a logit) also the
    ``standard_``/``adversarial_`` sensitivity, specificity and accuracy of ``logit > threshold``."""
    if not len(targets):
        return {}
    out = {"standard_auc": roc_auc(targets, clean)}
    if adv is not None:
        out["adversarial_auc"] = roc_auc(targets, adv)
    if threshold is not None:
        for name, logits in (("standard", clean), ("adversarial", adv)):
            if logits is not None:
                rates = operating_point(targets, logits, threshold)
                out.update({f"{name}_{k}": v for k, v in rates.items()})
    return out


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
    """Standard AUC and (optionally) adversarial AUC under ``settings``' attack, through BN ``route``
    (:func:`score_logits`, then :func:`auc_summary` with ``threshold``); ``{}`` when stopped."""
    scores = score_logits(model, loader, device, settings, adversarial=adversarial, steps=steps, seed=seed, route=route, cancel=cancel)
    return {} if scores is None else auc_summary(*scores, threshold=threshold)


def unit_summary(
    records: Sequence, targets: np.ndarray, clean: np.ndarray, adv: np.ndarray | None, unit: str = "image", threshold: float | None = None
) -> dict:
    """:func:`auc_summary` over ``unit`` ("image", "breast" or "patient"; :mod:`evaluation.units`).

    ``records`` are the scored images in the order of ``targets``. When they do not match
    (an image stopped decoding mid-run and was skipped) the views cannot be grouped: the
    summary stays per image and ``unit_note`` says why. Every summary names its ``unit``
    and how many units, positives and negatives it counts.
    """
    note = ""
    if unit != "image" and len(records) != len(targets):
        unit, note = "image", (f"{len(records) - len(targets)} image(s) could not be scored, so views could not be grouped: AUC per image")
    ids, c, y = aggregate(records, clean, targets, unit) if unit != "image" else (targets, clean, targets)
    a = aggregate(records, adv, targets, unit)[1] if adv is not None and unit != "image" else adv
    out: dict = {
        **auc_summary(np.asarray(y, dtype=float), c, a, threshold),
        "unit": unit,
        "units": len(ids),
        "positives": int((np.asarray(y) > 0.5).sum()),
        "negatives": int((np.asarray(y) <= 0.5).sum()),
    }
    if unit != "image" and len(targets):
        out.update(
            image_standard_auc=roc_auc(targets, clean), **({"image_adversarial_auc": roc_auc(targets, adv)} if adv is not None else {})
        )
    return {**out, "unit_note": note} if note else out
