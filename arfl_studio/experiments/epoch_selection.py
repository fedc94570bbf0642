"""Early stopping on an inner validation split: the epoch whose model scored the best AUC on
training patients held out of training (``[training] select_epoch = "validation-auc"``).

The held-out patients are the fold's ``threshold_holdout`` share, so the epoch and the decision
threshold are both chosen on them and the test fold is never looked at. The best model is kept
in memory (CPU copies) and in ``resume.pt``, so a resumed fold selects exactly as an
uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

SELECT_EPOCH = ("last", "validation-auc")


@dataclass
class EpochSelection:
    """The best epoch so far (1-based), its validation AUC and its weights."""

    epoch: int = 0
    auc: float = -math.inf
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def consider(self, epoch: int, auc: float, model: nn.Module) -> bool:
        """Keep ``model``'s weights when ``auc`` beats the best so far (ties keep the earlier epoch)."""
        if not auc > self.auc:  # NaN (one class only) never wins
            return False
        self.epoch, self.auc = epoch, float(auc)
        self.weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return True

    def restore_best(self, model: nn.Module) -> bool:
        """Load the best weights into ``model``; False when no epoch was validated."""
        if not self.weights:
            return False
        model.load_state_dict(self.weights)
        return True

    def to_state(self) -> dict:
        return {"epoch": self.epoch, "auc": self.auc, "weights": self.weights}

    @classmethod
    def from_state(cls, state: dict | None) -> "EpochSelection":
        if not state:
            return cls()
        return cls(int(state["epoch"]), float(state["auc"]), dict(state["weights"]))
