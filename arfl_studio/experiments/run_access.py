"""Reading a run folder: the one place the CLI, the GUI and scripts find what a run holds.

A run folder keeps each fold model at ``OUT/KEY/fold_K/model.pt``, or at
``OUT/KEY/seed_S/fold_K/model.pt`` when the run trains several seeds
(:func:`arfl_studio.experiments.run_folder.fold_dir`); a method's final model, trained on
every patient (``run --final``), at ``OUT/KEY/final/model.pt`` (``OUT/KEY/seed_S/final``):
a :class:`FoldModel` with ``fold`` None, which every loader here accepts. Everything here knows both
layouts: which methods, seeds and folds have a finished model, the checkpoint and
stored decision threshold of each, the held-out patients of a fold (from
``splits.json``) and the preprocessing the run trained with (from ``config.toml``).
Partial and resumed runs list only what has finished. No Qt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arfl_studio.experiments.config import ExperimentConfig, load_config
from arfl_studio.experiments.run_folder import fold_dir, seed_folders

if TYPE_CHECKING:
    from torch import nn

    from arfl_studio.data import ImageRecord, MammogramDataset, PreprocessSettings
    from arfl_studio.models.registry import DecisionThreshold, ModelSpec


@dataclass(frozen=True)
class FoldModel:
    """One trained model of a run: method key, fold (0-based; None: the final model) and seed folder
    (None: one seed)."""

    method: str
    fold: int | None
    seed: int | None = None

    @property
    def is_final(self) -> bool:
        return self.fold is None

    def label(self) -> str:
        """How a person names it: "F, fold 2", "F, fold 2, seed 1" or "F, final"."""
        text = f"{self.method}, final" if self.fold is None else f"{self.method}, fold {self.fold + 1}"
        return text if self.seed is None else f"{text}, seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "fold": self.fold, "seed": self.seed}


def _index_after(name: str, prefix: str) -> int | None:
    if not name.startswith(prefix):
        return None
    try:
        return int(name[len(prefix) :])
    except ValueError:
        return None


def _folds_in(folder: Path) -> list[int]:
    folds = []
    for child in folder.glob("fold_*"):
        k = _index_after(child.name, "fold_")
        if k is not None and (child / "model.pt").is_file():
            folds.append(k)
    return sorted(folds)


def fold_models(run_dir: str | Path, method: str | None = None) -> list[FoldModel]:
    """Every finished fold model of the run (of one ``method``), sorted by method, seed, fold."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found: list[FoldModel] = []
    for child in sorted(run_dir.iterdir()):
        if not child.is_dir() or (method is not None and child.name != method):
            continue
        found += [FoldModel(child.name, k) for k in _folds_in(child)]
        for seed_dir in sorted(child.glob("seed_*"), key=lambda p: _index_after(p.name, "seed_") or 0):
            seed = _index_after(seed_dir.name, "seed_")
            if seed is not None and seed_dir.is_dir():
                found += [FoldModel(child.name, k, seed) for k in _folds_in(seed_dir)]
    return found


def final_models(run_dir: str | Path, method: str | None = None) -> list[FoldModel]:
    """Every finished final model of the run (of one ``method``; ``run --final``), sorted by method, seed."""
    run_dir = Path(run_dir)
    found: list[FoldModel] = []
    for child in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if not child.is_dir() or (method is not None and child.name != method):
            continue
        if (fold_dir(run_dir, child.name, None) / "model.pt").is_file():
            found.append(FoldModel(child.name, None))
        for seed_dir in sorted(child.glob("seed_*"), key=lambda p: _index_after(p.name, "seed_") or 0):
            seed = _index_after(seed_dir.name, "seed_")
            if seed is not None and (fold_dir(run_dir, child.name, None, seed) / "model.pt").is_file():
                found.append(FoldModel(child.name, None, seed))
    return found


def run_methods(run_dir: str | Path) -> list[str]:
    """Method keys with at least one finished fold model (any seed)."""
    return sorted({m.method for m in fold_models(run_dir)})


def run_folds(run_dir: str | Path, method: str, seed: int | None = None) -> list[int]:
    """Finished folds of ``method`` (of seed folder ``seed``; None: the plain layout)."""
    return [m.fold for m in fold_models(run_dir, method) if m.seed == seed and m.fold is not None]


def run_config(run_dir: str | Path) -> ExperimentConfig:
    return load_config(Path(run_dir) / "config.toml")


def default_seed(run_dir: str | Path) -> int | None:
    """The seed folder a request without a seed means: the run's first seed (None with one seed)."""
    if (Path(run_dir) / "config.toml").is_file():
        return seed_folders(run_config(run_dir))[0][1]
    return None


def fold_checkpoint(run_dir: str | Path, method: str, fold: int | None, seed: int | None = None) -> Path:
    """``model.pt`` of one fold (``fold`` None: the final model); ``seed`` None means the run's first seed."""
    if seed is None:
        seed = default_seed(run_dir)
    path = fold_dir(run_dir, method, fold, seed) / "model.pt"
    if not path.exists():
        which = FoldModel(method, fold, seed).label()
        raise FileNotFoundError(f"{path} does not exist: {which} has not finished")
    return path


def load_fold_model(run_dir: str | Path, method: str, fold: int | None, seed: int | None = None) -> tuple[nn.Module, ModelSpec]:
    """The trained model of one fold, or the final model (``fold`` None), DSBN models on the clean route;
    ``seed`` as in :func:`fold_checkpoint`."""
    from arfl_studio.models.registry import load_checkpoint

    return load_checkpoint(fold_checkpoint(run_dir, method, fold, seed))


def load_fold_threshold(run_dir: str | Path, method: str, fold: int | None, seed: int | None = None) -> DecisionThreshold:
    """The decision threshold stored with one fold's (``fold`` None: the final) model (logit 0 with a note
    for older runs)."""
    from arfl_studio.models.registry import load_threshold

    return load_threshold(fold_checkpoint(run_dir, method, fold, seed))


def splits_document(run_dir: str | Path) -> dict[str, Any]:
    """The run's splits.json, checked: an object with a non-empty ``test_indices`` list of folds and
    its ``records``. A missing, unreadable or damaged file (``[]``, no folds) is an error naming it."""
    path = Path(run_dir) / "splits.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: the run has not made its folds yet") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} cannot be read: {exc}") from None
    tests = doc.get("test_indices") if isinstance(doc, dict) else None
    if not isinstance(tests, list) or not tests or not all(isinstance(f, list) for f in tests) or not isinstance(doc.get("records"), list):
        raise ValueError(f"{path} is damaged: not a splits document with folds (test_indices) and records")
    return dict(doc)


def fold_records(run_dir: str | Path, fold: int) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(train_records, test_records) of a fold, from the run's splits.json (the same for every seed)."""
    from arfl_studio.experiments.sources import record_from_dict

    splits = splits_document(run_dir)
    tests = splits["test_indices"]
    if not 0 <= fold < len(tests):
        raise ValueError(f"fold {fold} does not exist; the run has folds 0..{len(tests) - 1}")
    records = [record_from_dict(splits.get("root"), r) for r in splits["records"]]
    held = set(tests[fold])
    return [r for i, r in enumerate(records) if i not in held], [records[i] for i in sorted(held)]


def preprocess_settings(run_dir: str | Path, channels: int | None = None) -> tuple[PreprocessSettings, ExperimentConfig]:
    """The preprocessing the run's config.toml asks for (``channels`` from the model when given), and the config.
    A fold model's own record (:func:`model_preprocess`) is what evaluating that model must use."""
    from arfl_studio.data import PreprocessSettings

    config = run_config(run_dir)
    stored = dict(config.preprocess)
    if channels is not None:
        stored["channels"] = channels
    return PreprocessSettings.from_dict(stored), config


class PreprocessConflict(ValueError):
    """A request asks a model for another input than the one it was trained on."""


def recorded_preprocess(checkpoint: str | Path) -> tuple[dict[str, Any] | None, str]:
    """(the preprocessing ``checkpoint`` was trained on, where that was read), or (None, "")
    for a bare checkpoint that predates the record. A checkpoint in a run folder without a
    record falls back to the run's config.toml."""
    from arfl_studio.models.registry import load_model_input, spec_path

    stored = load_model_input(checkpoint)
    if stored is not None:
        return stored, str(spec_path(checkpoint))
    run_dir = run_dir_of(checkpoint)
    if run_dir is not None:
        return dict(run_config(run_dir).preprocess), str(run_dir / "config.toml")
    return None, ""


def model_preprocess(checkpoint: str | Path, channels: int, requested: dict[str, Any] | None = None) -> PreprocessSettings:
    """The preprocessing to evaluate ``checkpoint`` with: the one it was trained on.

    ``requested`` holds only the settings a person asked for explicitly (e.g. ``{"size": (128, 128)}``);
    one that differs from the record raises :class:`PreprocessConflict` naming both values, since the
    model's numbers at another input would look valid and be wrong. Without a record (an older bare
    checkpoint) the request, over the defaults, is used.
    """
    from arfl_studio.data import PreprocessSettings
    from arfl_studio.data.preprocess.settings import preprocess_conflicts

    requested = {k: v for k, v in (requested or {}).items() if v is not None}
    stored, where = recorded_preprocess(checkpoint)
    if stored is None:
        return PreprocessSettings.from_dict({**requested, "channels": channels})
    conflicts = preprocess_conflicts(stored, requested)
    if conflicts:
        raise PreprocessConflict(
            f"{checkpoint} was trained on another input than requested: {'; '.join(conflicts)}, "
            f"as {where} records; leave the option out to use the model's own preprocessing"
        )
    if stored.get("source") == "synthetic":
        return PreprocessSettings(size=tuple(stored["size"]), channels=channels)
    return PreprocessSettings.from_dict({**stored, "channels": channels})


def run_dataset(
    run_dir: str | Path,
    records: list[ImageRecord],
    channels: int | None = None,
    cache_dir: str | Path | None = None,
    settings: PreprocessSettings | None = None,
) -> Any:
    """``records`` preprocessed exactly as the run trained (its own cache unless ``cache_dir`` is given);
    ``settings``: a fold model's own record (:func:`model_preprocess`) instead of the run's config."""
    config_settings, config = preprocess_settings(run_dir, channels)
    settings = settings or config_settings
    if config.data.kind == "synthetic":
        from arfl_studio.experiments.sources import open_source

        return open_source(config).dataset(list(records))
    from arfl_studio.data import MammogramDataset

    return MammogramDataset(list(records), settings, cache_dir=cache_dir or config.data.cache_dir)


def external_dataset(
    run_dir: str | Path, records: list[ImageRecord], channels: int | None = None, cache_dir: str | Path | None = None
) -> MammogramDataset:
    """Images of another dataset (``records`` from a scan) preprocessed exactly as the run trained, through
    ``cache_dir`` (default: the run's cache, else the data layer's; the cache is keyed by content and settings)."""
    from arfl_studio.data import MammogramDataset, default_data_dir

    settings, config = preprocess_settings(run_dir, channels)
    cache = cache_dir or config.data.cache_dir or Path(default_data_dir()) / "cache"
    return MammogramDataset(list(records), settings, cache_dir=cache)


def held_out(
    run_dir: str | Path,
    method: str,
    fold: int,
    seed: int | None = None,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    requested: dict[str, Any] | None = None,
) -> tuple[nn.Module, ModelSpec, list[ImageRecord], Any]:
    """(model in eval mode, spec, held-out records, dataset) for one fold model: its own test patients
    (the first ``limit`` of them), preprocessed as the model trained (``requested``: see :func:`model_preprocess`)."""
    model, spec = load_fold_model(run_dir, method, fold, seed)
    model.eval()
    settings = model_preprocess(fold_checkpoint(run_dir, method, fold, seed), spec.in_channels, requested)
    test = fold_records(run_dir, fold)[1][: limit or None]
    return model, spec, list(test), run_dataset(run_dir, test, spec.in_channels, cache_dir, settings)


def checkpoint_on_records(
    checkpoint: str | Path, records: list[ImageRecord], size: int | None = None
) -> tuple[nn.Module, ModelSpec, list[ImageRecord], MammogramDataset]:
    """A bare checkpoint with the open dataset's records, preprocessed as the model was trained;
    ``size`` (N x N) only for a checkpoint without a record, and refused when it conflicts with one."""
    from arfl_studio.data import MammogramDataset
    from arfl_studio.models.registry import load_checkpoint

    model, spec = load_checkpoint(checkpoint)
    settings = model_preprocess(checkpoint, spec.in_channels, {"size": (size, size) if size else None})
    return model, spec, list(records), MammogramDataset(list(records), settings)


def run_dir_of(checkpoint: str | Path) -> Path | None:
    """The run folder holding ``checkpoint`` (OUT/KEY/fold_K/model.pt or OUT/KEY/seed_S/fold_K/model.pt)."""
    for parent in list(Path(checkpoint).resolve().parents)[:4]:
        if (parent / "config.toml").is_file():
            return parent
    return None


def latest_run(runs_root: str | Path) -> Path | None:
    """The most recently changed run folder (one holding config.toml) under ``runs_root``."""
    root = Path(runs_root)
    runs = [p for p in root.glob("*") if (p / "config.toml").is_file()] if root.is_dir() else []
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when the file is missing, unreadable or not an object."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
