"""Folder per class: any image under a ``benign/`` or ``malignant/`` folder takes that label."""

from __future__ import annotations

from pathlib import Path

from arfl_studio.data.datasets.layout_base import Layout, Verdict


def class_folder_label(rel: Path) -> int | None:
    for part in rel.parts[:-1]:
        label = {"benign": 0, "malignant": 1}.get(part.lower())
        if label is not None:
            return label
    return None


class FoldersLayout(Layout):
    name = "folders"
    label_rule = "the benign/ or malignant/ folder an image lies under"

    def judge(self, rel: str, info) -> Verdict:
        return Verdict(label=class_folder_label(Path(rel)))

    @staticmethod
    def detect(root: Path) -> bool:
        try:
            subdirs = {p.name.lower() for p in root.iterdir() if p.is_dir() and not p.is_symlink()}
        except OSError:
            return False
        return bool(subdirs & {"benign", "malignant"})
