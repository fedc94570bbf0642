"""Models with a declared feature layer: the two-moon MLP and image classifiers."""

from arfl_studio.models.dual_bn import bn_route, convert_to_dual_bn, has_dual_bn, set_bn_route
from arfl_studio.models.image import PretrainedWeightsMissing
from arfl_studio.models.mlp import TwoMoonMLP
from arfl_studio.models.registry import (
    BACKBONES,
    CheckpointError,
    DecisionThreshold,
    ModelSpec,
    build_model,
    load_checkpoint,
    load_threshold,
    save_checkpoint,
)

__all__ = [
    "BACKBONES",
    "CheckpointError",
    "DecisionThreshold",
    "ModelSpec",
    "PretrainedWeightsMissing",
    "TwoMoonMLP",
    "bn_route",
    "build_model",
    "convert_to_dual_bn",
    "has_dual_bn",
    "load_checkpoint",
    "load_threshold",
    "save_checkpoint",
    "set_bn_route",
]
