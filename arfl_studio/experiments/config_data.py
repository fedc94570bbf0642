"""The [data] section of an experiment config: where the images come from, and the label
policies of the layout that reads them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from arfl_studio.experiments.config_checks import check_ranges, toml_value
from arfl_studio.training.methods import SettingError

DATA_SOURCES = ("dataset", "demo", "synthetic")
LAYOUT_OPTIONS = ("cmmd_missing", "birads_positive", "birads_negative")


@dataclass
class DataConfig:
    """Where the images come from.

    ``root``: a dataset folder (CMMD layout, CSV or folder-per-class). ``demo``: the
    built-in synthetic phantom mammograms (``demo_patients``/``demo_size`` make a
    small private copy under ``demo_dir``). ``source = "synthetic"``: tiny in-memory
    tensors (no files) for tests, benchmarks and the DDP check -- not mammograms.
    """

    root: str | None = None
    demo: bool = False
    source: str | None = None  # "dataset" | "demo" | "synthetic"; inferred when None
    labels: str | None = None
    # label words beyond the layout's own (data/datasets/labels.py LABEL_VOCABULARY): {TRUE = 1, FALSE = 0}
    label_map: dict[str, Any] | None = None
    layout: str = "auto"
    # the layouts' visible label policies (data/datasets): a CMMD breast without a clinical-table row,
    # and the BI-RADS mapping of VinDr-Mammo and INbreast (comma-separated categories)
    cmmd_missing: str | None = None
    birads_positive: str | None = None
    birads_negative: str | None = None
    cache_dir: str | None = None
    demo_dir: str | None = None
    demo_patients: int | None = None
    demo_size: list[int] | None = None
    demo_seed: int = 0
    synthetic_samples: int = 64
    synthetic_size: list[int] = field(default_factory=lambda: [32, 32])
    synthetic_seed: int = 0

    @property
    def kind(self) -> str:
        if self.source:
            return self.source
        if self.demo:
            return "demo"
        return "dataset"

    def layout_options(self) -> dict[str, str]:
        """The label policies set, as ``scan_dataset(layout_options=...)`` takes them."""
        return {k: v for k in LAYOUT_OPTIONS if (v := getattr(self, k)) is not None}

    def validate(self) -> None:
        from arfl_studio.data.datasets.cmmd import MISSING_ROW_POLICIES
        from arfl_studio.data.datasets.layout_base import birads_code

        if self.cmmd_missing is not None and self.cmmd_missing not in MISSING_ROW_POLICIES:
            raise SettingError(f"[data] cmmd_missing must be one of {MISSING_ROW_POLICIES}, got {self.cmmd_missing!r}")
        for key in ("birads_positive", "birads_negative"):
            bad = [c for c in str(getattr(self, key) or "").split(",") if c.strip() and birads_code(c) is None]
            if bad:
                raise SettingError(f"[data] {key}: {bad} are not BI-RADS categories (0-6, 4a, 4b, 4c), comma-separated")
        if self.kind not in DATA_SOURCES:
            raise SettingError(f"[data] source must be one of {DATA_SOURCES}, got {self.source!r}")
        self._check_one_source()
        if self.cache_dir and Path(self.cache_dir).expanduser().exists() and not Path(self.cache_dir).expanduser().is_dir():
            raise SettingError(
                f"[data] cache_dir = {toml_value(self.cache_dir)} is a file, not a folder: name a folder for the preprocessed-image cache"
            )
        if self.label_map is not None:
            from arfl_studio.data.datasets.labels import LayoutError, label_vocabulary

            try:
                label_vocabulary("csv", self.label_map)
            except LayoutError as exc:
                raise SettingError(f"[data] {exc}") from exc
        if self.kind == "dataset" and not self.root:
            raise SettingError("[data] needs root = \"/path/to/dataset\" (or demo = true)")
        # 0 patients used to fall back to the 64-patient default silently
        check_ranges("[data]", asdict(self))
        for key in ("demo_size", "synthetic_size"):
            size = getattr(self, key)
            if size is not None and (len(size) != 2 or not all(8 <= s <= 8192 for s in size)):
                raise SettingError(f"[data] {key} = {toml_value(size)} is not allowed: it must be [rows, columns], each 8..8192")

    def _check_one_source(self) -> None:
        """One source of images: a config naming two (root and demo, say) used one of them silently."""
        named = []
        if self.root:
            named.append(f"root = {toml_value(self.root)}")
        if self.demo:
            named.append("demo = true")
        if self.source and not (self.source == "demo" and self.demo) and not (self.source == "dataset" and self.root):
            named.append(f"source = {toml_value(self.source)}")
        if len(named) > 1:
            raise SettingError(f"[data] names more than one source of images ({', '.join(named)}): keep one")
