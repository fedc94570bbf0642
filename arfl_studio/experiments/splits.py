"""A run's patient-level folds, kept in OUT/splits.json so every job of a run uses the same split.

OUT/splits_shareable.json is the same split with de-identified paths (no dataset root; study and
series folders that carry dates or UIDs replaced by keyed hashes, :func:`arfl_studio.data.shareable_path`):
the form to share with a paper or a collaborator.
"""

from __future__ import annotations

from pathlib import Path

from arfl_studio import atomic
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.run_folder import ExperimentError, read_json
from arfl_studio.experiments.sources import DataSource, patient_folds, record_to_dict
from arfl_studio.training import distributed as ddp


SHAREABLE = "splits_shareable.json"


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
        "folds": config.cv.folds,
        "seed": config.cv.seed,
        "method": "StratifiedGroupKFold (patient-level)",
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
    records = source.records()
    fingerprint = source.fingerprint()
    existing = read_json(path)
    if existing is not None and not (isinstance(existing, dict) and isinstance(existing.get("test_indices"), list)):
        raise ExperimentError(
            f"{path} is damaged (not a splits document); delete it and re-run: the split is made again from the same data and [cv] seed"
        )
    if existing is not None:
        if (
            existing.get("data_fingerprint") != fingerprint
            or existing.get("folds") != config.cv.folds
            or existing.get("seed") != config.cv.seed
        ):
            raise ExperimentError(f"{path} was made for different data or [cv] settings; use a new --out folder for this config")
        folds = [list(map(int, f)) for f in existing["test_indices"]]
    else:
        folds = patient_folds(records, config.cv.folds, config.cv.seed)
        if ctx.is_main:
            atomic.write_json(
                path,
                {
                    "folds": config.cv.folds,
                    "seed": config.cv.seed,
                    "method": "StratifiedGroupKFold (patient-level)",
                    "root": source.root,
                    "data_fingerprint": fingerprint,
                    "records": [record_to_dict(r) for r in records],
                    "test_indices": folds,
                    "test_patients": [sorted({str(records[i].patient_id) for i in fold}) for fold in folds],
                },
            )
    if ctx.is_main and not (out / SHAREABLE).exists():
        atomic.write_json(out / SHAREABLE, shareable_splits(config, records, folds))
    for a in range(len(folds)):  # no patient in two held-out folds
        pa = {str(records[i].patient_id) for i in folds[a]}
        for b in range(a + 1, len(folds)):
            leak = pa & {str(records[i].patient_id) for i in folds[b]}
            if leak:
                raise ExperimentError(f"patients {sorted(leak)[:5]} appear in folds {a} and {b}")
    return Splits(records, folds)
