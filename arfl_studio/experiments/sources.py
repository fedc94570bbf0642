"""Where a run's images come from: a dataset folder, the demo phantoms, or tiny in-memory tensors.

A source gives the runner a list of records (each with ``patient_id`` and
``label``), patient-level folds, a torch ``Dataset`` for any subset of records, and
a fingerprint of the data for the manifest. The real sources use the data layer
(:mod:`arfl_studio.data`); the ``synthetic`` source needs no files and exists for
tests, benchmarks and the DDP equivalence check (it is not a mammogram).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch.utils.data import Dataset

from arfl_studio.data import ImageRecord
from arfl_studio.data.datasets.lesions import Lesion
from arfl_studio.data import patient_folds as data_patient_folds
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.file_names import escape_name, has_undecodable_bytes, name_bytes, unescape_name
from arfl_studio.training.methods import SettingError


def record_to_dict(record: Any) -> dict:
    """A record as splits.json keeps it; a file name with bytes that are not UTF-8 is written escaped
    (``\\xNN``) and marked, so :func:`record_from_dict` finds the file again."""
    rel_path = str(getattr(record, "rel_path", ""))
    return {
        "rel_path": escape_name(rel_path),
        **({"rel_path_escaped": True} if has_undecodable_bytes(rel_path) else {}),
        "patient_id": str(record.patient_id),
        "laterality": getattr(record, "laterality", None),
        "view": getattr(record, "view", None),
        "label": int(record.label),
        **({"frame": record.frame} if getattr(record, "frame", None) is not None else {}),
        **({"split": record.split} if getattr(record, "split", None) else {}),  # the dataset's own train/test
        # lesion marks travel with the split so localisation works on held-out patients later
        **({"lesions": [les.to_dict() for les in record.lesions]} if getattr(record, "lesions", ()) else {}),
    }


def record_from_dict(root: str | None, data: dict) -> ImageRecord:
    rel_path = unescape_name(data["rel_path"]) if data.get("rel_path_escaped") else data["rel_path"]
    path = str(Path(root) / rel_path) if root else rel_path
    return ImageRecord(
        path=Path(path),
        rel_path=rel_path,
        patient_id=data["patient_id"],
        laterality=data.get("laterality"),
        view=data.get("view"),
        label=int(data["label"]),
        frame=data.get("frame"),
        split=data.get("split"),
        lesions=tuple(Lesion.from_dict(d) for d in data.get("lesions") or ()),
    )


@dataclass(frozen=True)
class Unreadable:
    """An image that failed to decode when a batch was made (it decoded when the run began)."""

    path: str
    reason: str


class SkipUnreadable(Dataset):
    """A dataset whose unreadable items become :class:`Unreadable` instead of an exception.

    The data layer raises ``MammogramReadError`` for a file that no longer decodes (changed,
    removed, or its cache entry damaged during a run); one such file must not end a fold.
    """

    def __init__(self, dataset: Dataset, records: Sequence):
        self.dataset, self.records = dataset, list(records)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        try:
            return self.dataset[i]
        except (ValueError, OSError) as exc:  # MammogramReadError is a ValueError
            record = self.records[i]
            return Unreadable(
                str(getattr(record, "rel_path", "") or getattr(record, "path", i)),
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )


def collate_readable(items: list) -> tuple[Any, list[Unreadable]]:
    """``default_collate`` of the readable items, and the unreadable ones (None when all are)."""
    from torch.utils.data import default_collate

    readable = [item for item in items if not isinstance(item, Unreadable)]
    skipped = [item for item in items if isinstance(item, Unreadable)]
    return (default_collate(readable) if readable else None), skipped


class BatchPlan:
    """A DataLoader ``batch_sampler`` whose batches are set before each pass (one loader per run)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return iter(list(self.batches))


class ReadableBatches:
    """Iterates a loader built with :func:`collate_readable`: yields (x, t), reports the skipped."""

    def __init__(self, loader, skipped: Callable[[Unreadable], None]):
        self.loader, self.skipped = loader, skipped

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch, skipped in self.loader:
            for item in skipped:
                self.skipped(item)
            if batch is not None:
                yield batch


class DataSource:
    root: str | None = None

    def records(self) -> list:
        raise NotImplementedError

    def dataset(self, records: Sequence) -> Dataset:
        raise NotImplementedError

    def fingerprint(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": type(self).__name__, "root": self.root}


def patient_folds(records: Sequence, k: int, seed: int) -> list[list[int]]:
    return [sorted(int(i) for i in fold) for fold in data_patient_folds(records, k=k, seed=seed)]


# ---------------------------------------------------------------------------------------------
class SyntheticImages(Dataset):
    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: Sequence[int]):
        self.images, self.labels, self.indices = images, labels, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        j = self.indices[i]
        return self.images[j], self.labels[j]


class SyntheticSource(DataSource):
    """Noisy images where positives carry a faint bright blob; two images per 'patient'."""

    def __init__(self, samples: int, size: Sequence[int], channels: int, seed: int):
        self.samples, self.size, self.channels, self.seed = int(samples), tuple(size), int(channels), int(seed)
        g = torch.Generator().manual_seed(self.seed)
        h, w = self.size
        labels = (torch.arange(self.samples) // 2 % 2).float()  # patients alternate benign/malignant
        images = 0.35 + 0.1 * torch.rand((self.samples, 1, h, w), generator=g)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        for i in range(self.samples):
            cy, cx = (torch.rand(2, generator=g) - 0.5).tolist()
            blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
            images[i, 0] += (0.25 if labels[i] > 0 else 0.05) * blob
        self.images = images.clamp(0, 1).repeat(1, self.channels, 1, 1).contiguous()
        self.labels = labels
        self._records = [
            ImageRecord(
                path=Path(f"synthetic/{i}"),
                rel_path=f"synthetic/{i}",
                patient_id=f"S{i // 2:04d}",
                laterality="L" if i % 2 == 0 else "R",
                view="CC",
                label=int(labels[i]),
            )
            for i in range(self.samples)
        ]

    def records(self) -> list:
        return list(self._records)

    def dataset(self, records: Sequence) -> Dataset:
        return SyntheticImages(self.images, self.labels, [int(r.rel_path.split("/")[1]) for r in records])

    def fingerprint(self) -> str:
        payload = json.dumps(["synthetic", self.samples, self.size, self.channels, self.seed])
        return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()

    def describe(self) -> dict:
        return {"kind": "synthetic", "samples": self.samples, "size": list(self.size), "seed": self.seed}


class FolderSource(DataSource):
    """A dataset folder scanned by the data layer (CMMD, CSV, folder-per-class, the demo)."""

    def __init__(
        self,
        root: str | Path,
        labels: str | None,
        layout: str,
        preprocess: dict,
        cache_dir: str | None,
        kind: str = "dataset",
        cancel=None,
        workers: int = 1,
        label_map: dict | None = None,
        layout_options: dict | None = None,
    ):
        from arfl_studio import data as data_layer

        missing = [n for n in ("scan_dataset", "MammogramDataset", "PreprocessSettings") if not hasattr(data_layer, n)]
        if missing:
            raise SettingError(f"the data layer does not provide {missing} yet; use [data] source = \"synthetic\"")
        self.data_layer = data_layer
        self.root = str(Path(root).resolve())
        self.kind = kind
        scan = data_layer.scan_dataset(
            self.root, labels=labels, layout=layout, cancel=cancel, label_map=label_map, layout_options=layout_options
        )
        self.scan_summary = scan.summary() if hasattr(scan, "summary") else {}
        self._records = sorted(scan.images, key=lambda r: str(r.rel_path))
        if not self._records:
            raise SettingError(f"no labelled images were found in {self.root} (layout {layout!r})")
        settings = dict(preprocess)
        if "size" in settings and settings["size"] is not None:
            settings["size"] = tuple(settings["size"])
        self.settings = data_layer.PreprocessSettings(**settings)
        self.cache_dir = str(cache_dir or Path(data_layer.default_data_dir()) / "cache")
        self.labels_file = labels
        # Decode + preprocess once into the content-keyed cache; unreadable files are dropped and reported.
        report = data_layer.preprocess_records(self._records, self.settings, self.cache_dir, workers=max(1, workers), cancel=cancel)
        if getattr(report, "cancelled", False):
            raise SettingError("cancelled while preprocessing the images")
        failed = set(report.failed_indices)
        self.dropped = [dict(path=p, reason=r) for p, r in report.failed]
        self._records = [r for i, r in enumerate(self._records) if i not in failed]

    def records(self) -> list:
        return list(self._records)

    def dataset(self, records: Sequence) -> Dataset:
        return self.data_layer.MammogramDataset(list(records), self.settings, cache_dir=self.cache_dir)

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for record in self._records:
            path = Path(record.path)
            size = path.stat().st_size if path.exists() else -1
            digest.update(name_bytes(f"{record.rel_path}|{size}|{record.patient_id}|{record.label}\n"))
        if self.labels_file and Path(self.labels_file).is_file():
            digest.update(Path(self.labels_file).read_bytes())
        return "sha256:" + digest.hexdigest()

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "root": self.root,
            "images": len(self._records),
            "scan": self.scan_summary,
            "dropped": self.dropped,
            "cache_dir": self.cache_dir,
        }


def open_source(config: ExperimentConfig, cancel=None) -> DataSource:
    data = config.data
    channels = int(config.preprocess.get("channels", 3))
    if data.kind == "synthetic":
        return SyntheticSource(data.synthetic_samples, data.synthetic_size, channels, data.synthetic_seed)
    cache_dir = data.cache_dir
    if data.kind == "demo":
        from arfl_studio import data as data_layer

        if data.demo_patients or data.demo_dir:
            size = tuple(data.demo_size) if data.demo_size else None
            root = (
                Path(data.demo_dir)
                if data.demo_dir
                else (
                    Path(data_layer.default_demo_dir()).parent
                    / f"demo-p{data.demo_patients}-{'x'.join(map(str, size or ()))}-s{data.demo_seed}"
                )
            )
            if not root.exists() or not any(root.iterdir()):
                kwargs: dict[str, Any] = {"seed": data.demo_seed}
                if data.demo_patients:
                    kwargs["patients"] = data.demo_patients
                if size:
                    kwargs["size"] = size
                root = Path(data_layer.generate_demo_dataset(root, **kwargs))
        else:
            root = Path(data_layer.ensure_demo_dataset())
        return FolderSource(
            root,
            data.labels,
            data.layout,
            config.preprocess,
            cache_dir,
            kind="demo",
            cancel=cancel,
            workers=config.training.workers,
            label_map=data.label_map,
            layout_options=data.layout_options(),
        )
    return FolderSource(
        data.root,
        data.labels,
        data.layout,
        config.preprocess,
        cache_dir,
        cancel=cancel,
        workers=config.training.workers,
        label_map=data.label_map,
        layout_options=data.layout_options(),
    )


def model_input_record(config: ExperimentConfig) -> dict:
    """The input a model of this config is trained on, as its ``model.json`` records it:
    the whole [preprocess] (orientation, crop, size, channels, fit, intensity), or for
    synthetic data the image size and channels (nothing is preprocessed)."""
    from arfl_studio.data.preprocess.settings import PreprocessSettings

    channels = int(config.preprocess.get("channels", 3))
    if config.data.kind == "synthetic":
        return {"source": "synthetic", "size": list(config.data.synthetic_size), "channels": channels}
    return PreprocessSettings.from_dict(dict(config.preprocess)).model_input_record()


def folds_are_valid(folds: list[list[int]], n: int) -> bool:
    flat = sorted(i for fold in folds for i in fold)
    return flat == list(range(n))


def fold_sizes(folds: list[list[int]]) -> list[int]:
    return [len(f) for f in folds]
