"""The two-moon MLP (2-10-10-1) of the paper, optionally as an ensemble.

With ``n_models > 1`` the weights carry a leading model axis and one forward
pass evaluates all networks (one per seed/row) with batched matrix products:
input ``(M, N, 2)`` gives logits ``(M, N)``. Each network is initialised exactly
like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)) from its own generator.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


class TwoMoonMLP(nn.Module):
    feature_layer = "penultimate hidden layer"

    def __init__(
        self,
        hidden: Sequence[int] = (10, 10),
        in_features: int = 2,
        activation: str = "relu",
        features: str = "post",
        n_models: int = 1,
        seeds: Sequence[int] | None = None,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if features not in ("post", "pre"):
            raise ValueError(f"features must be 'post' or 'pre' (activation), got {features!r}")
        if n_models < 1:
            raise ValueError(f"n_models must be >= 1, got {n_models}")
        self.activation_name = activation
        self.features = features
        self.n_models = n_models
        sizes = [in_features, *hidden, 1]
        seeds = list(seeds) if seeds is not None else list(range(n_models))
        if len(seeds) != n_models:
            raise ValueError(f"need one seed per model: {n_models} models, {len(seeds)} seeds")
        weights, biases = [[] for _ in sizes[1:]], [[] for _ in sizes[1:]]
        for seed in seeds:
            generator = torch.Generator().manual_seed(int(seed))
            for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
                bound = 1.0 / math.sqrt(fan_in)
                weights[i].append((torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound)
                biases[i].append((torch.rand(1, fan_out, generator=generator) * 2 - 1) * bound)
        self.weights = nn.ParameterList(nn.Parameter(torch.stack(w)) for w in weights)
        self.biases = nn.ParameterList(nn.Parameter(torch.stack(b)) for b in biases)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        single = x.dim() == 2
        if single:
            if self.n_models != 1:
                raise ValueError(f"an ensemble of {self.n_models} models takes input (M, N, D)")
            x = x.unsqueeze(0)
        act = ACTIVATIONS[self.activation_name]
        h, features = x, None
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b, h, w)
            if i == last:
                h = z
                break
            h = act(z)
            if i == last - 1:
                features = z if self.features == "pre" else h
        logits = h.squeeze(-1)
        if single:
            logits, features = logits.squeeze(0), features.squeeze(0)
        return (logits, features) if return_features else logits

    def member(self, index: int) -> "TwoMoonMLP":
        """A single-network copy of ensemble member ``index`` (for plots and checks)."""
        single = TwoMoonMLP(
            hidden=[w.shape[-1] for w in self.weights[:-1]],
            in_features=self.weights[0].shape[1],
            activation=self.activation_name,
            features=self.features,
        )
        with torch.no_grad():
            for dst, src in zip(single.weights, self.weights):
                dst.copy_(src[index : index + 1])
            for dst, src in zip(single.biases, self.biases):
                dst.copy_(src[index : index + 1])
        return single
