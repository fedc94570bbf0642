"""``arfl-studio saliency ... --out PATH.dcm``: the overlay as a DICOM Secondary Capture beside the
source mammogram (``data.dicom.secondary_capture``), one per model (``--compare``: two series,
``PATH-1.dcm`` and ``PATH-2.dcm``). The method and fold come from the checkpoint's place in its run
folder (``RUN/KEY/fold_K/model.pt``), ε from ``--eps`` for the perturbation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

NOT_DICOM = (".npy", ".png", ".jpg", ".jpeg", ".tif", ".tiff")


def wants_dicom(args) -> bool:
    return bool(args.out) and Path(args.out).suffix.lower() == ".dcm"


def dicom_paths(args) -> list[Path]:
    from arfl_studio.experiments.overlay_dicom import instance_paths

    return instance_paths(args.out, ["1", "2"] if args.compare else ["1"])


def check_dicom_output(args) -> None:
    """Refused before any work: a DICOM export lies on a DICOM's own grid; existing files need --force."""
    from arfl_studio.commands.outputs import check_writable

    if args.space != "native":
        raise ValueError(f"{args.out}: a DICOM export lies on the DICOM's own pixel grid: use --space native")
    if Path(args.image).suffix.lower() in NOT_DICOM:
        raise ValueError(f"{args.out}: a DICOM export needs a DICOM IMAGE to refer to, not {Path(args.image).name}")
    for path in dicom_paths(args):
        check_writable(path, "file", args.force)


def checkpoint_identity(path: Path) -> tuple[str, int | str | None]:
    """(method, fold as users count it or "final") of ``RUN/KEY[/seed_S]/fold_K/model.pt``; else (file stem, None)."""
    folder = path.parent.name
    digits = folder.removeprefix("fold_")
    fold: int | str | None = "final" if folder == "final" else int(digits) + 1 if folder.startswith("fold_") and digits.isdigit() else None
    if fold is None:
        return path.stem, None
    up = path.parent.parent
    return (up.parent.name if up.name.startswith("seed_") else up.name), fold


def write_dicom_outputs(args, pictures: list[np.ndarray], checkpoints: list[Path]) -> list[Path]:
    """Each model's blended picture (uint8 RGB on the DICOM's grid) as a Secondary Capture."""
    from arfl_studio.data.dicom.secondary_capture import secondary_capture, series_description, write_secondary_capture

    perturb = args.method == "perturbation"
    overlay = f"δ {args.attack}" if perturb else f"saliency {args.method}"
    written = []
    for i, (rgb, checkpoint, path) in enumerate(zip(pictures, checkpoints, dicom_paths(args))):
        method, fold = checkpoint_identity(checkpoint)
        description = series_description(overlay, method, fold, args.eps if perturb else None)
        written.append(write_secondary_capture(path, secondary_capture(args.image, rgb, description, series_number=900 + i)))
    return written
