"""Training the two-moon rows: rows that share an objective structure train as one ensemble.

:func:`group_rows` puts the r-mix rows that share r, the training attack and the feature
point into one :class:`TwoMoonMLP` ensemble (:func:`grouped_mix_loss`); TRADES and MIRST
rows train through the engine's ``compute_loss``. :func:`train_naive` trains one network
after another with the engine's ``train`` (the benchmark's baseline).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from arfl_studio.data.demo.two_moons import epoch_order
from arfl_studio.experiments.two_moons_rows import RowSpec, TwoMoonSettings
from arfl_studio.models.mlp import TwoMoonMLP
from arfl_studio.training import (
    EpochEvent,
    LossTerms,
    classification_loss,
    compute_loss,
    make_adversarial,
    robust_loss,
    to_signed_labels,
    train,
)


def _group_key(row: RowSpec):
    m = row.method
    if m.scheme == "mix":
        return ("mix", m.mix_ratio, row.features if m.uses_arfl else "post", m.attack)
    return (m.scheme, row.key)


def group_rows(rows: Sequence[RowSpec]) -> list[list[RowSpec]]:
    """Rows that can train as one ensemble (same scheme, r, attack and feature point)."""
    groups: dict = {}
    for row in rows:
        groups.setdefault(_group_key(row), []).append(row)
    return list(groups.values())


def grouped_mix_loss(model, x, targets, rows: Sequence[RowSpec], member_rows: torch.Tensor) -> torch.Tensor:
    """Eq. 4/5 for an ensemble whose members may differ in lambda, Eq. 5 sign and variant.

    ``member_rows[m]`` is the index into ``rows`` of member m; all rows share the
    scheme ``mix``, r and the training attack. Returns the mean over members of each
    member's own ``compute_loss(...).total`` (so ``loss * M`` gives every member the
    gradient of its own loss, like the engine's ``loss_scale``).
    """
    r = rows[0].method.mix_ratio
    attack = rows[0].method.attack
    n_members = member_rows.numel()
    subgroups: dict = {}
    for i, row in enumerate(rows):
        m = row.method
        if m.uses_arfl:
            idx = (member_rows == i).nonzero().squeeze(-1)
            k = (m.robust_variant, m.robust_weight, m.eq5_sign)
            subgroups[k] = idx if k not in subgroups else torch.cat([subgroups[k], idx])

    def part(x_in, adversarial):
        if not subgroups:
            return classification_loss(model(x_in), targets)
        logits, features = model(x_in, return_features=True)
        loss = classification_loss(logits, targets)
        y = to_signed_labels(targets)
        for (variant, lam, eq5_sign), idx in subgroups.items():
            sign = -1.0 if (adversarial and eq5_sign == "as-printed") else 1.0
            loss = loss + sign * lam * (idx.numel() / n_members) * robust_loss(features[idx], y[idx], variant)
        return loss

    total = torch.zeros((), device=x.device)
    if r < 1:
        x_adv = make_adversarial(model, x, targets, attack)
        total = total + (1 - r) * part(x_adv, True)
    if r > 0:
        total = total + r * part(x, False)
    return total


def _optimizer(s: TwoMoonSettings, params):
    if s.optimizer == "adam":
        return torch.optim.Adam(params, lr=s.lr)
    if s.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=s.lr)
    return torch.optim.SGD(params, lr=s.lr, momentum=0.9)


def _batches(x_train, y_train, seeds, member_seed, batch_size, device):
    """batches(epoch) -> list of (x (M, B, 2), targets (M, B)); each member sees its seed's data and order."""
    n = x_train.shape[1]

    def batches(epoch):
        orders = torch.stack([epoch_order(s, epoch, n) for s in seeds])  # (S, N)
        xs = torch.gather(x_train, 1, orders.unsqueeze(-1).expand(-1, -1, x_train.shape[-1]))
        ys = torch.gather(y_train, 1, orders)
        xs, ys = xs[member_seed].to(device), ys[member_seed].to(device)
        return [(xs[:, i : i + batch_size], ys[:, i : i + batch_size]) for i in range(0, n, batch_size)]

    return batches


Progress = Callable[[str], None]


def _default_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _fit(model, optimizer, loss_fn, batches, epochs, n_members, progress, label, cancel):
    """The engine's loop on an ensemble: ``loss_fn`` is each member's mean loss, scaled by M."""
    started = time.perf_counter()
    every = max(1, epochs // 10)

    def report(event):
        if isinstance(event, EpochEvent) and ((event.epoch + 1) % every == 0 or event.epoch + 1 == epochs):
            progress(f"[{label}] epoch {event.epoch + 1}/{epochs} loss {event.losses['total']:.4f} ({time.perf_counter() - started:.1f} s)")

    def objective(m, x, t):
        loss = loss_fn(m, x, t)
        return LossTerms(loss, {"total": loss.detach()})

    result = train(
        model,
        optimizer,
        batches,
        None,
        epochs,
        objective=objective,
        loss_scale=n_members,
        device=next(model.parameters()).device,
        callback=report,
        cancel=cancel,
    )
    if result.status == "cancelled":
        raise KeyboardInterrupt("cancelled")
    return time.perf_counter() - started


@dataclass
class TrainedGroup:
    rows: list[RowSpec]
    model: TwoMoonMLP
    member_rows: torch.Tensor  # (M,) row index per member
    member_seed: torch.Tensor  # (M,) seed index per member
    train_seconds: float


def _model_for(s: TwoMoonSettings, features: str, init_seeds: Sequence[int]) -> TwoMoonMLP:
    return TwoMoonMLP(hidden=tuple(s.hidden), activation=s.activation, features=features, n_models=len(init_seeds), seeds=list(init_seeds))


def train_batched(s, rows, data, device, progress=_default_progress, cancel=None) -> list[TrainedGroup]:
    trained = []
    n_seeds = len(s.seeds)
    for group in group_rows(rows):
        member_rows = torch.arange(len(group)).repeat_interleave(n_seeds)
        member_seed = torch.arange(n_seeds).repeat(len(group))
        features = next((r.features for r in group if r.method.uses_arfl), "post")
        model = _model_for(s, features, [s.seeds[i] for i in member_seed]).to(device)
        optimizer = _optimizer(s, model.parameters())
        if group[0].method.scheme == "mix":
            mr = member_rows.to(device)
            loss_fn = lambda m, x, t, g=group, mr=mr: grouped_mix_loss(m, x, t, g, mr)  # noqa: E731
        else:
            loss_fn = lambda m, x, t, meth=group[0].method: compute_loss(m, x, t, meth).total  # noqa: E731
        batches = _batches(data.x_train, data.y_train, s.seeds, member_seed, s.batch_size, device)
        label = ",".join(r.key for r in group)
        seconds = _fit(model, optimizer, loss_fn, batches, s.epochs, len(member_rows), progress, label, cancel)
        trained.append(TrainedGroup(list(group), model, member_rows, member_seed, seconds))
    return trained


def train_naive(s, rows, data, device, progress=_default_progress, cancel=None) -> list[TrainedGroup]:
    """One network after another with the engine's ``train`` (the benchmark's baseline)."""
    trained = []
    n = data.x_train.shape[1]
    for row in rows:
        for si, seed in enumerate(s.seeds):
            model = _model_for(s, row.features, [seed]).to(device)
            optimizer = _optimizer(s, model.parameters())
            x_all, y_all = data.x_train[si], data.y_train[si]

            def batches(epoch, x_all=x_all, y_all=y_all, seed=seed):
                order = epoch_order(seed, epoch, n)
                xs, ys = x_all[order], y_all[order]
                return [(xs[i : i + s.batch_size], ys[i : i + s.batch_size]) for i in range(0, n, s.batch_size)]

            started = time.perf_counter()
            train(model, optimizer, batches, row.method, s.epochs, device=device, cancel=cancel)
            seconds = time.perf_counter() - started
            progress(f"[naive {row.key} seed {seed}] {s.epochs} epochs ({seconds:.1f} s)")
            trained.append(TrainedGroup([row], model, torch.zeros(1, dtype=torch.long), torch.tensor([si]), seconds))
    return trained
