"""Choosing a model's decision threshold on its training data, and the rates at a threshold.

AUC needs no threshold, but accuracy, sensitivity, specificity, "flipped" cases and
the viewer's verdict do. After training, the model scores the training folds' images
(clean inputs, eval mode, clean batch norms) and a rule picks the logit above which an
image is called malignant. By default (the paper's protocol, every training patient
trains) these are the images it trained on; their scores are optimistic once a model
memorises them, so ``[training] threshold_holdout = 0.2`` keeps a fifth of the training
patients out of training and chooses the threshold on their images instead. The rules:

- ``"youden"`` (default): the point of the ROC curve with the largest
  J = sensitivity + specificity - 1;
- ``{sensitivity = 0.9}``: the highest threshold whose training sensitivity is at
  least 0.9 (the most specific one that meets the target);
- ``{specificity = 0.9}``: the lowest threshold whose training specificity is at least
  0.9 (the most sensitive one that meets the target);
- ``{logit = 0.0}``: a fixed logit (0 is the plain sigmoid-0.5 rule).

The threshold is placed halfway between the two neighbouring training scores that
the rule separates, so the strict rule ``logit > threshold`` reproduces the chosen
ROC point on the training data exactly.
"""

from __future__ import annotations

import threading

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import roc_curve

from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.models.registry import DecisionThreshold
from arfl_studio.training.attacks import attack_mode
from arfl_studio.training.methods import SettingError

TARGET_RULES = ("sensitivity", "specificity")
HOLDOUT = "held-out training patients"
TRAINING_IMAGES = "training images"
HOLDOUT_TOO_SMALL = (
    "The training fold has too few patients of a class to hold some out, so the threshold was chosen on the training images (optimistic)."
)


def threshold_split(train_records: list, fraction: float, seed: int) -> tuple[list, list]:
    """(records that train, records that choose the threshold): ``fraction`` of the patients, whole."""
    from arfl_studio.data.datasets.splits import holdout_patients

    held = set(holdout_patients(train_records, fraction, seed)) if fraction else set()
    return ([r for i, r in enumerate(train_records) if i not in held], [r for i, r in enumerate(train_records) if i in held])


@dataclass(frozen=True)
class ThresholdRule:
    """How the threshold is chosen: ``kind`` in youden / sensitivity / specificity / logit."""

    kind: str = "youden"
    value: float | None = None

    @classmethod
    def parse(cls, setting: Any) -> "ThresholdRule":
        """``[training] threshold``: "youden", or a table with one of sensitivity / specificity / logit."""
        allowed = 'threshold must be "youden" or a table with one of sensitivity = 0..1, specificity = 0..1, logit = N'
        if isinstance(setting, ThresholdRule):
            return setting
        if setting == "youden":
            return cls()
        if not isinstance(setting, Mapping) or len(setting) != 1:
            raise SettingError(f"[training] {allowed}; got {setting!r}")
        ((kind, value),) = setting.items()
        if kind not in (*TARGET_RULES, "logit"):
            raise SettingError(f"[training] {allowed}; got {setting!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SettingError(f"[training] threshold {kind} must be a finite number, got {value!r}")
        if kind in TARGET_RULES and not 0.0 < value <= 1.0:
            raise SettingError(f"[training] threshold {kind} must be in (0, 1], got {value!r}")
        return cls(kind, float(value))

    def to_setting(self) -> str | dict[str, float]:
        return "youden" if self.kind == "youden" else {self.kind: self.value}


def operating_point(targets, logits, threshold: float) -> dict[str, float | None]:
    """Sensitivity, specificity and accuracy of ``logit > threshold`` (None where a class is absent)."""
    targets = np.asarray(targets) > 0.5
    predicted = np.asarray(logits, dtype=float) > threshold
    positives, negatives = int(targets.sum()), int((~targets).sum())
    return {
        "sensitivity": float((predicted & targets).sum() / positives) if positives else None,
        "specificity": float((~predicted & ~targets).sum() / negatives) if negatives else None,
        "accuracy": float(np.mean(predicted == targets)) if len(targets) else None,
    }


def _between(scores_desc: np.ndarray, k: int) -> float:
    """A logit t with ``score > t`` true exactly for the k + 1 highest distinct scores."""
    if k + 1 < len(scores_desc):
        return float((scores_desc[k] + scores_desc[k + 1]) / 2)
    return float(scores_desc[k] - max(1.0, abs(scores_desc[k])) * 1e-3)


def choose_threshold(
    targets, logits, rule: ThresholdRule | str | Mapping = "youden", chosen_on: str | None = None, note: str = ""
) -> DecisionThreshold:
    """The decision threshold that ``rule`` picks on (training) ``targets`` and ``logits``.

    Falls back to logit 0 with a note when the scores cannot support the rule (one
    class only, or non-finite scores).
    """
    rule = ThresholdRule.parse(rule)
    targets = (np.asarray(targets) > 0.5).astype(int)
    logits = np.asarray(logits, dtype=float).reshape(-1)
    if len(targets) != len(logits):
        raise ValueError(f"{len(targets)} targets but {len(logits)} scores")
    described = {
        "rule": rule.kind,
        "target": rule.value,
        "n_images": int(len(targets)),
        "n_positive": int(targets.sum()),
        "chosen_on": chosen_on,
    }

    def finish(logit: float, fallback: str = "") -> DecisionThreshold:
        rates = operating_point(targets, logits, logit)
        return DecisionThreshold(
            logit=float(logit),
            sensitivity=rates["sensitivity"],
            specificity=rates["specificity"],
            note=" ".join(filter(None, (fallback, note))),
            **described,
        )

    if rule.kind == "logit":
        return finish(rule.value)
    if len(np.unique(targets)) < 2 or not np.all(np.isfinite(logits)):
        reason = "only one class" if np.all(np.isfinite(logits)) else "non-finite scores"
        return finish(0.0, f"the training data has {reason}: the {rule.kind} rule cannot be applied; logit 0 is used")
    # Every distinct score is a candidate: roc_curve's point k predicts positive for score >= thresholds[k].
    fpr, tpr, cut = roc_curve(targets, logits, drop_intermediate=False)
    fpr, tpr, cut = fpr[1:], tpr[1:], cut[1:]  # drop the (0, 0) point at +inf: it calls nothing malignant
    if rule.kind == "youden":
        k = int(np.argmax(tpr - fpr))  # first maximum: the highest threshold reaching the best J
    elif rule.kind == "sensitivity":
        k = int(np.flatnonzero(tpr >= rule.value - 1e-12)[0])
    else:
        meets = np.flatnonzero(1.0 - fpr >= rule.value - 1e-12)
        if len(meets) == 0:  # even the top score is a benign image: only "nothing is malignant" is that specific
            return finish(
                float(cut[0]) + max(1.0, abs(float(cut[0]))) * 1e-3,
                f"no training threshold reaches specificity {rule.value:g}; nothing is called malignant",
            )
        k = int(meets[-1])  # the lowest threshold that still meets the target
    return finish(_between(cut, k))


@torch.no_grad()
def score_images(
    model: nn.Module, batches: Iterable, device: torch.device | str = "cpu", cancel: threading.Event | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """(targets, clean logits) of every batch, in eval mode through the clean batch norms;
    None when ``cancel`` (polled per batch) is set."""
    model = getattr(model, "module", model)
    targets, logits = [], []
    route = bn_route(model, "clean") if has_dual_bn(model) else _no_route()
    with route, attack_mode(model):
        for x, t in batches:
            if cancel is not None and cancel.is_set():
                return None
            logits.append(model(x.to(device).float()).float().reshape(-1).cpu())
            targets.append(torch.as_tensor(t).float().reshape(-1).cpu())
    if not targets:
        return np.zeros(0), np.zeros(0)
    return torch.cat(targets).numpy(), torch.cat(logits).numpy()


class _no_route:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def fit_threshold(
    model: nn.Module,
    batches: Iterable,
    rule: ThresholdRule | str | Mapping = "youden",
    device: torch.device | str = "cpu",
    chosen_on: str | None = None,
    note: str = "",
    cancel: threading.Event | None = None,
) -> DecisionThreshold | None:
    """Score ``batches`` (``chosen_on`` names them) with the trained model; choose its threshold by ``rule``.

    ``note`` is kept with the threshold for its readers (e.g. why no patients were held out).
    None when ``cancel`` is set while scoring."""
    scored = score_images(model, batches, device, cancel)
    if scored is None:
        return None
    return choose_threshold(*scored, rule, chosen_on, note)
