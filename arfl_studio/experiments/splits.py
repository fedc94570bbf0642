"""A run's patient-level folds, kept in OUT/splits.json so every job of a run uses the same split.

``[cv] split = "official"`` makes the dataset's own train/test split the run's one fold
(:func:`arfl_studio.data.datasets.splits.official_split`): patients in both official sets are
left out of training (the test set stays as published), listed in splits.json and named in
every results table beside the split itself (:func:`split_facts`).

OUT/splits_shareable.json is the same split with de-identified paths (no dataset root; study and
series folders that carry dates or UIDs replaced by keyed hashes, :func:`arfl_studio.data.shareable_path`):
the form to share with a paper or a collaborator.
"""

from __future__ import annotations

from pathlib import Path

from arfl_studio import atomic
from arfl_studio.data.datasets.splits import OFFICIAL_SPLIT_SOURCES, OfficialSplit, official_split
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.run_folder import ExperimentError, read_json
from arfl_studio.experiments.sources import DataSource, patient_folds, record_to_dict
from arfl_studio.training import distributed as ddp


SHAREABLE = "splits_shareable.json"


def split_method(config: ExperimentConfig) -> str:
    return "official train/test split (one fold)" if config.cv.split == "official" else "StratifiedGroupKFold (patient-level)"


def scan_facts(source: DataSource) -> tuple[str | None, str | None]:
    """(layout, label rule in words) of a scanned source; (None, None) for synthetic data."""
    summary = getattr(source, "scan_summary", None) or {}
    return summary.get("layout"), summary.get("label_rule") or None


def plan_official(config: ExperimentConfig, source: DataSource) -> OfficialSplit | None:
    """The official split of the source's records (None for patient-level CV); ExperimentError
    when the dataset has none. Called before anything is written to the run folder."""
    if config.cv.split != "official":
        return None
    try:
        return official_split(source.records())
    except ValueError as exc:
        layout = scan_facts(source)[0] or "this data"
        raise ExperimentError(f"[cv] split = \"official\" cannot be used on {layout}: {exc}") from None


def split_description(config: ExperimentConfig, layout: str | None, official: OfficialSplit | None) -> str:
    """The split in the words the results tables print."""
    if official is None:
        return f"patient-level {config.cv.folds}-fold cross-validation (StratifiedGroupKFold, seed {config.cv.seed})"
    text = OFFICIAL_SPLIT_SOURCES.get(layout or "", f"the dataset's official train/test split ({layout})") + " (one fold)"
    if official.overlap:
        text += (
            f"; {len(official.overlap)} patient(s) in both official sets: their {len(official.left_out)} training "
            "image(s) left out, the test set kept as published"
        )
    return text


def split_facts(config: ExperimentConfig, source: DataSource, official: OfficialSplit | None) -> dict:
    """What splits.json and the results tables say about the split and the labels."""
    layout, label_rule = scan_facts(source)
    facts: dict[str, object] = {
        "split": config.cv.split,
        "split_description": split_description(config, layout, official),
        "layout": layout,
        "label_rule": label_rule,
    }
    if official is not None:
        facts["patients_in_both_official_sets"] = official.overlap
        facts["left_out_of_training"] = [str(getattr(r, "rel_path", "")) for r in official.left_out]
    return facts


def shareable_splits(config: ExperimentConfig, records: list, folds: list[list[int]]) -> dict:
    """The split with de-identified paths and no dataset root, for sharing."""
    from arfl_studio.data.dicom.shareable import identifying, shareable_path

    patients = {str(r.patient_id) for r in records}

    def path_of(record) -> str:
        rel = str(getattr(record, "rel_path", "") or "")
        parts = Path(rel).parts
        # the per-user key is read (or made) only when some folder name needs hiding
        return shareable_path(rel, keep=patients) if any(identifying(p) for p in parts if p not in patients) else rel

    return {
        "folds": config.cv.fold_count,
        "seed": config.cv.seed,
        "split": config.cv.split,
        "method": split_method(config),
        "paths": "de-identified: study/series folders with dates or UIDs are keyed hashes (arfl_studio.data.dicom.shareable)",
        "records": [
            {
                "path": path_of(r),
                "patient_id": str(r.patient_id),
                "laterality": getattr(r, "laterality", None),
                "view": getattr(r, "view", None),
                "label": int(r.label),
            }
            for r in records
        ],
        "test_indices": folds,
        "test_patients": [sorted({str(records[i].patient_id) for i in fold}) for fold in folds],
    }


class Splits:
    def __init__(self, records: list, folds: list[list[int]]):
        self.records, self.folds = records, folds

    def train_test(self, fold: int) -> tuple[list, list]:
        held = set(self.folds[fold])
        return [r for i, r in enumerate(self.records) if i not in held], [self.records[i] for i in sorted(held)]


def prepare_splits(out: Path, config: ExperimentConfig, source: DataSource, ctx: ddp.DistributedContext) -> Splits:
    path = out / "splits.json"
    official = plan_official(config, source)
    records = official.records if official is not None else source.records()
    fingerprint = source.fingerprint()
    existing = read_json(path)
    if existing is not None and not (isinstance(existing, dict) and isinstance(existing.get("test_indices"), list)):
        raise ExperimentError(
            f"{path} is damaged (not a splits document); delete it and re-run: the split is made again from the same data and [cv] seed"
        )
    if existing is not None:
        if (
            existing.get("data_fingerprint") != fingerprint
            or existing.get("folds") != config.cv.fold_count
            or existing.get("seed") != config.cv.seed
            or existing.get("split", "patient-cv") != config.cv.split
        ):
            raise ExperimentError(f"{path} was made for different data or [cv] settings; use a new --out folder for this config")
        folds = [list(map(int, f)) for f in existing["test_indices"]]
    else:
        folds = [official.test] if official is not None else patient_folds(records, config.cv.folds, config.cv.seed)
        if ctx.is_main:
            atomic.write_json(
                path,
                {
                    "folds": config.cv.fold_count,
                    "seed": config.cv.seed,
                    "method": split_method(config),
                    **split_facts(config, source, official),
                    "root": source.root,
                    "data_fingerprint": fingerprint,
                    "records": [record_to_dict(r) for r in records],
                    "test_indices": folds,
                    "test_patients": [sorted({str(records[i].patient_id) for i in fold}) for fold in folds],
                },
            )
    if ctx.is_main and not (out / SHAREABLE).exists():
        atomic.write_json(out / SHAREABLE, shareable_splits(config, records, folds))
    for a in range(len(folds)):  # no patient trained and tested on in one fold
        held = set(folds[a])
        leak = {str(records[i].patient_id) for i in held} & {str(r.patient_id) for i, r in enumerate(records) if i not in held}
        if leak:
            raise ExperimentError(f"patients {sorted(leak)[:5]} are in fold {a}'s test set and in its training set")
    return Splits(records, folds)
