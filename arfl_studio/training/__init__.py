"""Qt-free training engine: ARFL's L_robust, attacks, every method's objective, the loop."""

from arfl_studio.training.attacks import attack_mode, fgsm_attack, pgd_attack
from arfl_studio.training.events import EpochEvent, StatusEvent, StepEvent
from arfl_studio.training.losses import (
    bernoulli_kl,
    classification_loss,
    robust_loss,
    to_signed_labels,
    trades_kl,
)
from arfl_studio.training.methods import (
    PAPER_ROWS,
    AttackSettings,
    MethodSettings,
    SettingError,
    paper_method,
)
from arfl_studio.training.objective import LossTerms, compute_loss, make_adversarial
from arfl_studio.training.trainer import NonFiniteLossError, TrainResult, train

__all__ = [
    "AttackSettings",
    "EpochEvent",
    "LossTerms",
    "MethodSettings",
    "NonFiniteLossError",
    "PAPER_ROWS",
    "SettingError",
    "StatusEvent",
    "StepEvent",
    "TrainResult",
    "attack_mode",
    "bernoulli_kl",
    "classification_loss",
    "compute_loss",
    "fgsm_attack",
    "make_adversarial",
    "paper_method",
    "pgd_attack",
    "robust_loss",
    "to_signed_labels",
    "trades_kl",
    "train",
]
