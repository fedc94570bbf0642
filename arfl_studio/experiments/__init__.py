"""Cross-validated experiments, method grids, sweeps, comparison tables and statistics (no Qt)."""

from arfl_studio.experiments.config import (
    CVConfig,
    DataConfig,
    EvaluationConfig,
    ExperimentConfig,
    SweepConfig,
    TrainingConfig,
    load_config,
)
from arfl_studio.experiments.comparisons import mann_whitney
from arfl_studio.experiments.results import collect, comparison_rows
from arfl_studio.experiments.result_tables import export_table
from arfl_studio.experiments.runner import (
    ExperimentError,
    ExperimentResult,
    FoldEvent,
    FoldFinished,
    evaluate_auc,
    run_experiment,
)
from arfl_studio.experiments.run_access import FoldModel, fold_models, fold_records, load_fold_model, load_fold_threshold

__all__ = [
    "CVConfig",
    "DataConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "ExperimentError",
    "ExperimentResult",
    "FoldEvent",
    "FoldFinished",
    "FoldModel",
    "fold_models",
    "SweepConfig",
    "TrainingConfig",
    "collect",
    "comparison_rows",
    "evaluate_auc",
    "export_table",
    "fold_records",
    "load_config",
    "load_fold_model",
    "load_fold_threshold",
    "mann_whitney",
    "run_experiment",
]
