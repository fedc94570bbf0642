"""Building models from a spec, and checkpoints that are plain state dicts.

A checkpoint is two files: ``NAME.pt`` (the state dict only, loaded with
``torch.load(weights_only=True)``) and ``NAME.json``: the :class:`ModelSpec` that
rebuilds the architecture, and the model's :class:`DecisionThreshold` (the logit
above which an image is called malignant, chosen on the training data)::

    {"model": {...}, "threshold_logit": -0.31, "threshold": {"rule": "youden", ...},
     "preprocess": {"orient": true, "crop": "breast", "size": [224, 224], "channels": 3, "fit": "stretch", ...}}

``preprocess`` is the whole input the model was trained on (orientation, crop, size,
channels, fit, intensity): evaluation, attack, saliency and the viewer use it and
refuse a request for another input (:func:`load_model_input`).

Nothing executable is ever unpickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from arfl_studio import atomic
from arfl_studio.models.dual_bn import convert_to_dual_bn
from arfl_studio.models.image import small_cnn, torchvision_classifier
from arfl_studio.models.patch_net import NORMS, PatchScoreNet

BACKBONES = ("small_cnn", "patch_fcn", "vgg16", "vgg16_bn", "resnet18", "resnet50")


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a plain state dict."""


@dataclass(frozen=True)
class ModelSpec:
    backbone: str = "small_cnn"
    in_channels: int = 3
    pretrained: bool = False
    weights_path: str | None = None
    fine_tune: str = "auto"  # "paper" with ImageNet weights, else "all"
    dual_bn: bool = False
    features: str = "post"
    width: int = 16  # small_cnn and patch_fcn
    top_k: int = 10  # patch_fcn: the image logit is the mean of the top_k patch logits on the breast
    norm: str = "batch"  # patch_fcn: "batch" | "group"

    def validate(self) -> "ModelSpec":
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.features not in ("post", "pre"):
            raise ValueError(f"features must be 'post' or 'pre', got {self.features!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1, got {self.top_k!r}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> "ModelSpec":
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown model settings {sorted(unknown)}; allowed: {sorted(cls.__dataclass_fields__)}")
        return cls(**dict(data)).validate()


THRESHOLD_RULES = ("youden", "sensitivity", "specificity", "logit", "none")
NO_THRESHOLD_NOTE = "the checkpoint stores no decision threshold (it predates stored thresholds): logit 0 (probability 0.5) is used"


@dataclass(frozen=True)
class DecisionThreshold:
    """The model's operating point: an image is called malignant when its logit > ``logit``.

    ``rule`` says how it was chosen ("youden", a target "sensitivity"/"specificity",
    a fixed "logit", or "none" for a checkpoint without one, which uses logit 0);
    ``target`` is the rule's value; ``chosen_on`` names the images it was chosen on
    ("held-out training patients" or "training images"), which ``sensitivity``/
    ``specificity``/``n_images``/``n_positive`` describe; ``note`` says anything a
    reader must know (e.g. a fallback).
    """

    logit: float = 0.0
    rule: str = "none"
    target: float | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    n_images: int | None = None
    n_positive: int | None = None
    note: str = ""
    chosen_on: str | None = None

    @property
    def probability(self) -> float:
        """The threshold as a malignancy probability, sigmoid(logit)."""
        return 1.0 / (1.0 + math.exp(-max(-80.0, min(80.0, self.logit))))

    def describe(self) -> str:
        """One line for tables and panes, e.g. 'logit -0.31 (p 0.423, youden)'."""
        rule = self.rule if self.target is None else f"{self.rule} {self.target:g}"
        return f"logit {self.logit:.3g} (p {self.probability:.3f}, {rule})"

    def to_dict(self) -> dict:
        return {**asdict(self), "probability": self.probability}

    @classmethod
    def from_dict(cls, data: Mapping) -> "DecisionThreshold":
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in dict(data).items() if k in known}  # "probability" is derived
        if values.get("rule", "none") not in THRESHOLD_RULES:
            raise ValueError(f"threshold rule must be one of {THRESHOLD_RULES}, got {values.get('rule')!r}")
        logit = values.get("logit", 0.0)
        if isinstance(logit, bool) or not isinstance(logit, (int, float)) or not math.isfinite(logit):
            raise ValueError(f"threshold logit must be a finite number, got {logit!r}")
        return cls(**{**values, "logit": float(logit)})


def build_model(spec: ModelSpec) -> nn.Module:
    spec.validate()
    model: nn.Module
    if spec.backbone == "small_cnn":
        model = small_cnn(spec.in_channels, spec.width, spec.features)
    elif spec.backbone == "patch_fcn":
        model = PatchScoreNet(spec.in_channels, spec.width, spec.norm, spec.top_k)
    else:
        model = torchvision_classifier(spec.backbone, spec.in_channels, spec.pretrained, spec.weights_path, spec.fine_tune, spec.features)
    return convert_to_dual_bn(model) if spec.dual_bn else model


def spec_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint).with_suffix(".json")


def save_checkpoint(
    path: str | Path, model: nn.Module, spec: ModelSpec, threshold: DecisionThreshold | None = None, preprocess: Mapping | None = None
) -> Path:
    """Write the state dict and ``model.json``; ``preprocess`` is the model input's record
    (``PreprocessSettings.model_input_record()``, or a synthetic source's size and channels)."""
    path = Path(path)
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic.save_torch(path, state)
    meta: dict = {"model": spec.to_dict()}
    if threshold is not None:
        meta["threshold_logit"] = threshold.logit  # the one number a reader needs (attack --threshold default)
        meta["threshold"] = threshold.to_dict()
    if preprocess is not None:
        meta["preprocess"] = dict(preprocess)
    atomic.write_json(spec_path(path), meta)
    return path


def load_threshold(path: str | Path) -> DecisionThreshold:
    """The decision threshold stored beside checkpoint ``path``.

    A checkpoint written before thresholds were stored (or with no ``threshold``)
    gets logit 0 with rule "none" and a note saying so; a description that cannot
    be read or holds a malformed threshold raises :class:`CheckpointError`.
    """
    meta = spec_path(path)
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta} (the model description beside the checkpoint) cannot be read: {exc}") from exc
    stored = data.get("threshold") if isinstance(data, Mapping) else None
    if stored is None and isinstance(data, Mapping) and "threshold_logit" in data:
        stored = {"logit": data["threshold_logit"], "rule": "logit"}
    if stored is None:
        return DecisionThreshold(note=NO_THRESHOLD_NOTE)
    if not isinstance(stored, Mapping):
        raise CheckpointError(f"{meta}: 'threshold' must be a table with a 'logit', got {stored!r}")
    try:
        return DecisionThreshold.from_dict(stored)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta}: unreadable decision threshold: {exc}") from exc


def load_model_input(path: str | Path) -> dict | None:
    """The preprocessing recorded beside checkpoint ``path`` (None for a checkpoint that
    predates the record); an unreadable description raises :class:`CheckpointError`."""
    meta = spec_path(path)
    data = _read_description(meta)
    stored = data.get("preprocess")
    if stored is not None and not isinstance(stored, Mapping):
        raise CheckpointError(f"{meta}: 'preprocess' must be a table of settings, got {stored!r}")
    return dict(stored) if stored is not None else None


def _read_description(meta: Path) -> dict:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{meta} (the model description beside the checkpoint) cannot be read: {exc}") from exc
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{meta} is not a model description (a JSON object with a \"model\" table)")
    return dict(data)


def load_state_dict_file(path: str | Path, map_location="cpu") -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        atomic.verify_checksum(path)  # the checksum written with it, where there is one
    except atomic.DamagedFileError as exc:
        raise CheckpointError(str(exc)) from None
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle with code, corrupt file, wrong format
        raise CheckpointError(f"{path} is not a plain state dict that can be loaded safely (weights_only=True): {exc}") from exc
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path} is not a plain state dict (a mapping of names to tensors); refusing to load it")
    return dict(state)


def load_checkpoint(path: str | Path, map_location="cpu") -> tuple[nn.Module, ModelSpec]:
    path = Path(path)
    meta = spec_path(path)
    if not meta.is_file():
        raise CheckpointError(f"{meta} (the model description beside the checkpoint) is missing")
    data = _read_description(meta)
    if not isinstance(data.get("model"), Mapping):
        raise CheckpointError(
            f"{meta} has no \"model\" table describing the architecture; it is not the description written with this checkpoint"
        )
    try:
        spec = ModelSpec.from_dict(data["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{meta}: {exc}") from exc
    # Architecture only: the checkpoint holds every weight, so no ImageNet file is needed.
    model = build_model(ModelSpec(**{**spec.to_dict(), "pretrained": False, "weights_path": None}))
    try:
        model.load_state_dict(load_state_dict_file(path, map_location))
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not match the model described in {meta}: {exc}") from exc
    model.eval()
    return model, spec
