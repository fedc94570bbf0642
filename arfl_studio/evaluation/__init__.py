"""Attack evaluation, sanity checks against gradient masking, saliency and perturbation maps.

Qt-free. See :func:`evaluate_robustness`, :func:`saliency_map`, :func:`perturbation`,
:func:`blend_overlay`.
"""

from arfl_studio.evaluation.attacks import ATTACKS, apgd_attack, margin, run_attack, square_attack, worst_case_attack
from arfl_studio.evaluation.progress import EvaluationCancelled, EvaluationProgress
from arfl_studio.evaluation.report import RobustnessReport, threshold_metrics
from arfl_studio.evaluation.robustness import evaluate_robustness
from arfl_studio.evaluation.saliency import (
    METHODS as SALIENCY_METHODS,
    blend_overlay,
    compare_figure,
    perturbation,
    perturbation_overlay,
    saliency_map,
)
from arfl_studio.evaluation.sanity import CHECK_NAMES, SanityWarning, sanity_checks

__all__ = [
    "ATTACKS",
    "CHECK_NAMES",
    "EvaluationCancelled",
    "EvaluationProgress",
    "RobustnessReport",
    "SanityWarning",
    "SALIENCY_METHODS",
    "apgd_attack",
    "blend_overlay",
    "compare_figure",
    "perturbation",
    "perturbation_overlay",
    "saliency_map",
    "evaluate_robustness",
    "margin",
    "run_attack",
    "sanity_checks",
    "square_attack",
    "threshold_metrics",
    "worst_case_attack",
]
