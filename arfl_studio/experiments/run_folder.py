"""A run folder's layout and records: where each fold lives (OUT/KEY/fold_K, or OUT/KEY/seed_S/fold_K
with several seeds; a final model in OUT/KEY/final), reading its JSON files, and what a manifest says about the machine."""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from arfl_studio import __version__
from arfl_studio.experiments.config import ExperimentConfig


class ExperimentError(RuntimeError):
    """A run stopped: the message says why and what to do; the run folder records it."""


FINAL = "final"  # the folder of a method's final model, trained on every patient (run --final)


def fold_dir(out_dir: str | Path, method_key: str, fold: int | None, seed: int | None = None) -> Path:
    """OUT/KEY/fold_K, or OUT/KEY/seed_S/fold_K when a run trains several seeds; fold None: the final
    model's OUT/KEY/final (OUT/KEY/seed_S/final)."""
    base = Path(out_dir) / method_key
    return (base if seed is None else base / f"seed_{seed}") / (FINAL if fold is None else f"fold_{fold}")


def seed_folders(config: ExperimentConfig) -> list[tuple[int, int | None]]:
    """(training seed, seed folder) pairs; one seed keeps the plain OUT/KEY/fold_K layout."""
    seeds = config.training.seed_list()
    return [(seeds[0], None)] if len(seeds) == 1 else [(s, s) for s in seeds]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str]:
    import torchvision

    return {
        "arfl_studio": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)
