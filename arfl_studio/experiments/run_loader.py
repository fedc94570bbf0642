"""The run's one data loader and its passes: training batches (augmented), validation and scoring.

Positions in the loader are positions in ``splits.json``'s records, so a fold's records are
lists of indices and a pass is a list of batches of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from arfl_studio.data.child_processes import loader_worker_init_fn, quiet_spawn_context
from arfl_studio.experiments.sources import (
    BatchPlan,
    DataSource,
    ReadableBatches,
    SkipUnreadable,
    Unreadable,
    collate_readable,
)


class RunLoader:
    """One DataLoader for a whole run: every fold's training, validation and scoring batches.

    Spawned worker processes start once per run, not per loader, fold or epoch (a fresh
    interpreter importing torch per worker per epoch made ``workers = 2`` 30x slower than 0;
    three persistent loaders per fold were still 27x slower on a short run). Each pass sets
    the list of batches (indices into the run's records) it wants, then iterates.
    """

    def __init__(self, source: DataSource, records: list, workers: int, device: torch.device):
        self.source = source  # the patch stage reads its images through the same preprocessing
        self.records = records  # positions in the loader are positions in splits.json
        self.position = {id(record): i for i, record in enumerate(records)}
        self.plan = BatchPlan()
        self.skipped: Callable[[Unreadable], None] = lambda item: None
        kwargs: dict[str, Any] = {}
        if workers > 0:  # spawn: safe beside a Qt GUI and on macOS/Windows
            kwargs.update(
                num_workers=workers,
                multiprocessing_context=quiet_spawn_context(),
                persistent_workers=True,
                worker_init_fn=loader_worker_init_fn(),
            )  # workers end when this process is killed
        # Its own generator: an iterator draws its base seed from it, and without one it drew from the
        # global RNG on every single-process pass but only once with persistent workers, so dropout and
        # attack random starts, and with them the AUCs, changed with ``workers``. Loading is
        # deterministic per sample (augmentation runs on whole batches in this process, from the
        # epoch's seeded RNG), so workers need no seeds of their own.
        self.loader = DataLoader(
            SkipUnreadable(source.dataset(records), records),
            batch_sampler=self.plan,
            collate_fn=collate_readable,
            pin_memory=device.type == "cuda",
            generator=torch.Generator().manual_seed(0),
            **kwargs,
        )

    def indices(self, records: list) -> list[int]:
        return [self.position[id(record)] for record in records]

    def passes(self, batches: list[list[int]], augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> "LoaderPass":
        return LoaderPass(self, batches, augment)


class LoaderPass:
    """One pass over given batches of the run's loader, yielding (x, t) (``augment``ed for training);
    unreadable images are reported."""

    def __init__(self, run_loader: RunLoader, batches: list[list[int]], augment: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.run_loader, self.batches, self.augment = run_loader, batches, augment

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.run_loader.plan.batches = self.batches
        for x, t in ReadableBatches(self.run_loader.loader, self.run_loader.skipped):
            yield (self.augment(x.float()) if self.augment is not None else x), t


def in_order(indices: list[int], batch_size: int) -> list[list[int]]:
    return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]


@dataclass
class FoldBatches:
    """The fold's records as positions in the run's loader, and the held-out fold's scoring pass."""

    loader: RunLoader
    train: list[int]
    threshold: list[int]  # the training images themselves when no patients are held out
    test: LoaderPass
