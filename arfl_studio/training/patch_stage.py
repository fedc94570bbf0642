"""The patch stage: lesion vs normal-tissue patches train a patch classifier before the
whole-image model (Shen et al. 2019), where the data marks its lesions.

Each epoch draws ``per_epoch`` patches centred on malignant lesions (jittered within half the
lesion radius, turned by quarter turns, flipped, and changed in gamma, contrast and brightness
inside the breast) and as many negatives: normal breast tissue away from any malignant lesion,
benign lesions (``benign_negatives``, 15 % of the negatives), and — once the model has learnt
something — hard negatives, the normal-tissue places the model itself scores highest
(``hard_fraction``, mined every ``hard_every`` epochs into a pool of the last 600). The loss is
the method's own (``compute_loss``: ARFL's L_robust, adversarial patches, TRADES ... all act
here too), on the patch logit of :func:`arfl_studio.models.patch_net.patch_mode`, with a
one-cycle learning rate (10 % warm-up, cosine down). Everything is in model space:
the images are the preprocessed inputs, the lesions mapped through the preprocessing geometry.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence, cast

import numpy as np
import torch
import torch.nn as nn

from arfl_studio.models.patch_net import PatchScoreNet, patch_mode
from arfl_studio.training.methods import MethodSettings, SettingError
from arfl_studio.training.objective import compute_loss


@dataclass(frozen=True)
class PatchStageSettings:
    """``[patch_stage]``: off while ``epochs`` is 0."""

    epochs: int = 0
    patch: int = 64  # side, model-input pixels
    per_epoch: int = 512  # malignant patches an epoch (as many negatives)
    hard_fraction: float = 0.5  # of the negatives, once mined
    hard_every: int = 2  # epochs between hard-negative mining (0: never)
    benign_negatives: bool = True  # benign lesions are negatives of malignant-vs-rest
    batch_size: int = 64
    lr: float = 2e-3

    def validate(self) -> "PatchStageSettings":
        if not 0 <= self.epochs <= 10_000:
            raise SettingError(f"[patch_stage] epochs must be 0..10000, got {self.epochs}")
        if not 16 <= self.patch <= 1024:
            raise SettingError(f"[patch_stage] patch must be 16..1024 pixels, got {self.patch}")
        if not 1 <= self.per_epoch <= 1_000_000 or not 1 <= self.batch_size <= 65_536:
            raise SettingError("[patch_stage] per_epoch and batch_size must be >= 1")
        if not 0 <= self.hard_fraction <= 1 or self.hard_every < 0:
            raise SettingError("[patch_stage] hard_fraction must be in [0, 1] and hard_every >= 0")
        if not 0 < self.lr <= 10:
            raise SettingError(f"[patch_stage] lr must be in (0, 10], got {self.lr}")
        return self


@dataclass
class PatchSource:
    """One training image in model space: (C, H, W) pixels, its label, lesion (row, col, radius)."""

    image: np.ndarray
    label: int
    malignant: list[tuple[float, float, float]] = field(default_factory=list)
    benign: list[tuple[float, float, float]] = field(default_factory=list)


def _crop(image: np.ndarray, row: int, col: int, size: int) -> np.ndarray:
    """``size`` x ``size`` patch centred at (row, col), zero outside the image."""
    channels, rows, cols = image.shape
    out = np.zeros((channels, size, size), np.float32)
    r0, c0 = row - size // 2, col - size // 2
    rs, re = max(r0, 0), min(r0 + size, rows)
    cs, ce = max(c0, 0), min(c0 + size, cols)
    if rs < re and cs < ce:
        out[:, rs - r0 : re - r0, cs - c0 : ce - c0] = image[:, rs:re, cs:ce]
    return out


def _far(row: float, col: float, lesions: Sequence[tuple[float, float, float]], margin: float) -> bool:
    return all((row - r) ** 2 + (col - c) ** 2 > (rad + margin) ** 2 for r, c, rad in lesions)


def _tissue_positions(source: PatchSource, rng: np.random.Generator, n: int, margin: float) -> list[tuple[int, int]]:
    """Up to ``n`` random places on the breast (pixels > 0.02), ``margin`` beyond any malignant lesion."""
    rows, cols = np.nonzero(source.image[0] > 0.02)
    if rows.size == 0:
        return []
    picks = rng.integers(0, rows.size, size=4 * n)
    found = [(int(rows[i]), int(cols[i])) for i in picks if _far(rows[i], cols[i], source.malignant, margin)]
    return found[:n]


def _augmented(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Quarter turn, flip; gamma, contrast and brightness on the breast only (background stays 0:
    it is the blanked film and the letterbox, and the model reads 0 as "not breast")."""
    patch = np.rot90(patch, int(rng.integers(4)), axes=(1, 2))
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    gamma, contrast, brightness = np.exp(rng.uniform(-0.3, 0.3)), rng.uniform(0.85, 1.15), rng.uniform(-0.08, 0.08)
    changed = np.clip(contrast * np.power(np.clip(patch, 0.0, 1.0), gamma) + brightness, 0.0, 1.0)
    return np.ascontiguousarray(np.where(patch > 0, changed, 0.0), dtype=np.float32)


HARD_POOL = 600  # hard negatives kept: the last few minings, so one noisy mining does not dominate
BENIGN_SHARE = 0.15  # of the negatives, benign-lesion patches (when benign_negatives)


class PatchSampler:
    """Draws one epoch's patches; remembers the hard negatives mined so far."""

    def __init__(self, sources: Sequence[PatchSource], settings: PatchStageSettings, rng: np.random.Generator):
        self.sources, self.settings, self.rng = list(sources), settings, rng
        self.lesions = [(s, les) for s in self.sources for les in s.malignant]
        self.benign = [(s, les) for s in self.sources for les in s.benign] if settings.benign_negatives else []
        self.hard: list[tuple[PatchSource, int, int]] = []
        if not self.lesions:
            raise SettingError(
                "[patch_stage] needs malignant lesions with a position in the training images "
                "(a lesions table: lesions.csv, CBIS-DDSM masks, VinDr boxes, INbreast outlines)"
            )

    def epoch(self) -> tuple[np.ndarray, np.ndarray]:
        s, rng = self.settings, self.rng
        size, n = s.patch, s.per_epoch
        margin = max(size / 6, 2.0)  # about 8 mm at 0.8 mm/pixel with 64-px patches
        patches, labels = [], []
        for i in rng.integers(0, len(self.lesions), size=n):
            source, (row, col, radius) = self.lesions[i]
            jitter = max(radius * 0.5, 3.0)
            r, c = row + rng.uniform(-jitter, jitter), col + rng.uniform(-jitter, jitter)
            patches.append(_augmented(_crop(source.image, int(round(r)), int(round(c)), size), rng))
            labels.append(1.0)
        hard = int(round(n * s.hard_fraction)) if self.hard else 0
        benign = int(round(n * BENIGN_SHARE)) if self.benign else 0
        for i in rng.integers(0, max(len(self.hard), 1), size=hard):
            source, r, c = self.hard[i]
            r, c = r + int(rng.integers(-4, 5)), c + int(rng.integers(-4, 5))
            patches.append(_augmented(_crop(source.image, r, c, size), rng))
        for i in rng.integers(0, max(len(self.benign), 1), size=benign):
            source, (row, col, radius) = self.benign[i]
            jitter = max(radius * 0.5, 3.0)
            r, c = row + rng.uniform(-jitter, jitter), col + rng.uniform(-jitter, jitter)
            patches.append(_augmented(_crop(source.image, int(round(r)), int(round(c)), size), rng))
        while len(patches) < 2 * n:  # normal tissue fills the rest
            source = self.sources[int(rng.integers(len(self.sources)))]
            for r, c in _tissue_positions(source, rng, 4, margin):
                patches.append(_augmented(_crop(source.image, r, c, size), rng))
        del patches[2 * n :]
        labels += [0.0] * (len(patches) - len(labels))
        order = rng.permutation(len(patches))
        return np.stack(patches)[order], np.asarray(labels, np.float32)[order]

    @torch.no_grad()
    def mine(self, model: nn.Module, device: torch.device, per_image: int = 6, images: int = 40) -> None:
        """The highest-scoring map cells of normal tissue become the hard negatives."""
        net = cast(PatchScoreNet, getattr(model, "module", model))  # unwrapped from DDP
        was_training = model.training
        model.eval()
        found = []
        picks = self.rng.permutation(len(self.sources))[:images]
        for i in picks:
            source = self.sources[int(i)]
            x = torch.from_numpy(source.image[None]).to(device)
            logits = net.logit_map(x)[0][0].cpu().numpy()
            valid = net.breast_cells(x, logits.shape)[0].cpu().numpy()
            logits = np.where(valid, logits, -np.inf)
            for flat in np.argsort(logits, axis=None)[::-1][: 4 * per_image]:
                if not np.isfinite(logits.flat[flat]):
                    break
                r, c = np.unravel_index(flat, logits.shape)
                row, col = int(r * net.stride + net.stride // 2), int(c * net.stride + net.stride // 2)
                if _far(row, col, source.malignant, max(self.settings.patch / 6, 2.0)):
                    found.append((source, row, col))
                if sum(1 for f in found if f[0] is source) >= per_image:
                    break
        self.hard = (self.hard + found)[-HARD_POOL:]
        model.train(was_training)


def train_patch_stage(
    model: nn.Module,
    sources: Sequence[PatchSource],
    method: MethodSettings,
    settings: PatchStageSettings,
    device: torch.device,
    *,
    seed: int,
    pos_weight: float | None = None,
    validate: Callable[[nn.Module], float] | None = None,
    cancel: threading.Event | None = None,
    progress: Callable[[int, int, dict], None] | None = None,
) -> dict:
    """Train ``model`` on patches of ``sources`` for ``settings.epochs``; returns the history.

    With ``validate(model) -> AUC`` (whole images of held-out training patients) the best
    epoch's weights from the last two thirds of the epochs are kept. Cancelling stops after the
    current batch; the model is left as it is.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    sampler = PatchSampler(sources, settings, rng)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=1e-3)
    steps = settings.epochs * -(-2 * settings.per_epoch // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=settings.lr, total_steps=max(steps, 1), pct_start=0.1)
    history: dict = {"loss": [], "validation_auc": [], "selected_epoch": None}
    best_auc, best_weights = -np.inf, None
    for epoch in range(settings.epochs):
        if settings.hard_every and epoch and epoch % settings.hard_every == 0:
            sampler.mine(model, device)
        x_all, y_all = sampler.epoch()
        model.train()
        total, seen = 0.0, 0
        for start in range(0, len(x_all), settings.batch_size):
            if cancel is not None and cancel.is_set():
                return history
            x = torch.from_numpy(x_all[start : start + settings.batch_size]).to(device)
            y = torch.from_numpy(y_all[start : start + settings.batch_size]).to(device)
            with patch_mode(model):
                loss = compute_loss(model, x, y, method, pos_weight).total
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total, seen = total + float(loss.detach()) * len(x), seen + len(x)
        history["loss"].append(total / max(seen, 1))
        # the first third of the epochs is not a candidate: on a handful of held-out patients an
        # untrained model's AUC swings by chance (measured on mias-dev: +-0.3 between epochs)
        if validate is not None and epoch >= settings.epochs // 3:
            auc = float(validate(model))
            history["validation_auc"].append(auc)
            if auc >= best_auc:  # ties: the later, longer-trained epoch
                best_auc, history["selected_epoch"] = auc, epoch + 1
                best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if progress is not None:
            progress(epoch + 1, settings.epochs, {"loss": history["loss"][-1], "validation_auc": (history["validation_auc"] or [None])[-1]})
    if best_weights is not None:
        model.load_state_dict(best_weights)
    return history
