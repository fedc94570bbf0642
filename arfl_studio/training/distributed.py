"""Data-parallel training on several GPUs (``torchrun``) -- DDP helpers, Qt-free.

``torchrun --nproc_per_node N -m arfl_studio run CONFIG.toml`` starts N processes
with RANK/WORLD_SIZE/LOCAL_RANK set; :func:`init_from_env` joins the process
group (NCCL on CUDA, gloo on CPU). The model is wrapped in :class:`AttackAwareDDP`:
in training mode its forward goes through DistributedDataParallel (gradients are
all-reduced), while in eval mode -- which is what ``attack_mode`` sets while an
adversarial example is made, and what validation uses -- it calls the local
replica (``model.module``) directly. Attacks therefore take input gradients on the
local replica without touching DDP's gradient buckets. Rank 0 writes the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device_kind: str = "auto") -> DistributedContext:
    """Join the process group torchrun set up (no-op for a single process)."""
    if not launched_by_torchrun():
        return DistributedContext()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_kind in ("auto", "cuda")
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistributedContext(rank, world, local, backend)


def device_for(context: DistributedContext, device: torch.device) -> torch.device:
    if context.enabled and device.type == "cuda":
        return torch.device("cuda", context.local_rank)
    return device


class AttackAwareDDP(DistributedDataParallel):
    """DDP whose eval-mode forward (attacks, validation) runs the local replica only."""

    def forward(self, *args, **kwargs):
        if not self.training:
            return self.module(*args, **kwargs)
        return super().forward(*args, **kwargs)


def wrap(model: nn.Module, context: DistributedContext, device: torch.device, sync_batchnorm: bool = False) -> nn.Module:
    if not context.enabled:
        return model
    if sync_batchnorm and device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return AttackAwareDDP(model, device_ids=ids, broadcast_buffers=True)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def barrier(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.barrier()


def broadcast_object(value, context: DistributedContext, src: int = 0):
    if not context.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_max(flag: bool, context: DistributedContext) -> bool:
    """True on every rank if it is true on any (e.g. a cancel request seen by one rank)."""
    if not context.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    if context.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], context: DistributedContext) -> dict[str, float]:
    """The mean over ranks of each value (e.g. an epoch's mean losses; every rank has the same keys)."""
    if not context.enabled or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if context.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return {k: float(v) / context.world_size for k, v in zip(keys, t.cpu().tolist())}
