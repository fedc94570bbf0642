"""Folder per class: any image under a ``benign/`` or ``malignant/`` folder takes that label."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from arfl_studio.data.datasets.labels import label_vocabulary, parse_label
from arfl_studio.data.datasets.layout_base import Layout, Verdict

if TYPE_CHECKING:
    from arfl_studio.data.dicom.reader import HeaderInfo


def class_folder_label(rel: Path, vocabulary: dict[str, int] | None = None) -> int | None:
    """The class of the first folder on ``rel``'s path that names one (``LABEL_VOCABULARY["folders"]``)."""
    for part in rel.parts[:-1]:
        label = parse_label(part, vocabulary or label_vocabulary("folders"))
        if label is not None:
            return label
    return None


class FoldersLayout(Layout):
    name = "folders"
    label_rule = "the benign/ or malignant/ folder an image lies under"

    def __init__(self, root: Path, table: Path | None, options: dict[str, Any]):
        super().__init__(root, table, options)
        self.vocabulary = label_vocabulary("folders", options.get("label_map"))

    def judge(self, rel: str, info: HeaderInfo) -> Verdict:
        return Verdict(label=class_folder_label(Path(rel), self.vocabulary))

    @staticmethod
    def detect(root: Path) -> bool:
        try:
            subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir() and not p.is_symlink()}
        except OSError:
            return False
        return bool(subdirs & {"benign", "malignant"})
