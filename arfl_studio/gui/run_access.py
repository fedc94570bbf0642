"""Reading a run folder for the attack and viewer panes (Qt-free helpers, run in workers)."""

from __future__ import annotations

import json
from pathlib import Path


def run_methods(run_dir: str | Path) -> list[str]:
    """Method keys with at least one trained fold in ``run_dir``."""
    run_dir = Path(run_dir)
    keys = []
    for child in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if child.is_dir() and any((f / "model.pt").is_file() for f in child.glob("fold_*")):
            keys.append(child.name)
    return keys


def run_folds(run_dir: str | Path, key: str) -> list[int]:
    folds = []
    for f in sorted(Path(run_dir, key).glob("fold_*")):
        if (f / "model.pt").is_file():
            try:
                folds.append(int(f.name.split("_")[1]))
            except ValueError:
                continue
    return sorted(folds)


def preprocess_settings(run_dir: str | Path):
    from arfl_studio.data import PreprocessSettings
    from arfl_studio.experiments import load_config

    config = load_config(Path(run_dir) / "config.toml")
    p = dict(config.preprocess)
    if "size" in p:
        p["size"] = tuple(p["size"])
    return PreprocessSettings(**p), config


def held_out(run_dir: str | Path, key: str, fold: int):
    """(model, spec, test records, dataset) for one fold of a run: its own held-out patients."""
    from arfl_studio.data import MammogramDataset
    from arfl_studio.experiments import fold_records, load_fold_model

    model, spec = load_fold_model(run_dir, key, fold)
    model.eval()
    _train, test = fold_records(run_dir, fold)
    settings, config = preprocess_settings(run_dir)
    cache = getattr(config.data, "cache_dir", None)
    return model, spec, list(test), MammogramDataset(list(test), settings, cache_dir=cache)


def checkpoint_on_records(checkpoint: str | Path, records, size: int):
    from arfl_studio.data import MammogramDataset, PreprocessSettings
    from arfl_studio.models.registry import load_checkpoint

    model, spec = load_checkpoint(checkpoint)
    settings = PreprocessSettings(size=(size, size), channels=spec.in_channels)
    return model, spec, list(records), MammogramDataset(list(records), settings)


def latest_run(runs_root: str | Path) -> Path | None:
    root = Path(runs_root)
    runs = [p for p in root.glob("*") if (p / "config.toml").is_file()] if root.is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
