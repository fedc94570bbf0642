"""The two-moon data of the paper's illustrative experiment (scikit-learn's make_moons).

Paper setting: noise 0.2, 10,000 training and 1,000 test samples. Each seed draws
its own sample: one ``make_moons(n_train + n_test, noise, shuffle=True,
random_state=seed)`` call, the first ``n_train`` points for training and the rest
for testing, so the two sets are independent draws from the same distribution.
Labels are 0 (upper moon) / 1 (lower moon) as make_moons returns them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass
class TwoMoonData:
    """Tensors with a leading seed axis: x (S, N, 2) float32, targets (S, N) float32 in {0, 1}."""

    seeds: list[int]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def make_two_moons(seed: int, n_train: int = 10_000, n_test: int = 1_000, noise: float = 0.2):
    """One seed's sample: ``(x_train, y_train, x_test, y_test)`` as float32 numpy arrays."""
    from sklearn.datasets import make_moons

    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    if not noise >= 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    x, y = make_moons(n_samples=n_train + n_test, noise=noise, shuffle=True, random_state=int(seed))
    x, y = x.astype(np.float32), y.astype(np.float32)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def two_moons_for_seeds(seeds: Sequence[int], n_train: int = 10_000, n_test: int = 1_000, noise: float = 0.2) -> TwoMoonData:
    parts = [make_two_moons(s, n_train, n_test, noise) for s in seeds]
    stack = lambda i: torch.from_numpy(np.stack([p[i] for p in parts]))  # noqa: E731
    return TwoMoonData(list(map(int, seeds)), stack(0), stack(1), stack(2), stack(3))


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of ``seed`` in ``epoch``: a permutation that depends on both only.

    Every network trained with the same seed (any row, batched or alone) sees the
    same sequence of batches, so rows are paired per seed.
    """
    generator = torch.Generator().manual_seed(1_000_003 * (int(seed) + 1) + int(epoch))
    return torch.randperm(n, generator=generator)
