"""Where a run keeps each fold: OUT/KEY/fold_K, or OUT/KEY/seed_S/fold_K with several seeds."""

from __future__ import annotations

from pathlib import Path

from arfl_studio.experiments.config import ExperimentConfig


def fold_dir(out_dir: str | Path, method_key: str, fold: int, seed: int | None = None) -> Path:
    """OUT/KEY/fold_K, or OUT/KEY/seed_S/fold_K when a run trains several seeds."""
    base = Path(out_dir) / method_key
    return (base if seed is None else base / f"seed_{seed}") / f"fold_{fold}"


def seed_folders(config: ExperimentConfig) -> list[tuple[int, int | None]]:
    """(training seed, seed folder) pairs; one seed keeps the plain OUT/KEY/fold_K layout."""
    seeds = config.training.seed_list()
    return [(seeds[0], None)] if len(seeds) == 1 else [(s, s) for s in seeds]
