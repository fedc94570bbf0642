"""The fold's patch stage (``[patch_stage]``): the training patients' images and lesion marks,
in model space, train the patch classifier before the whole-image epochs.

Runs once, on a fresh fold (a resumed fold's ``resume.pt`` already holds what it learnt); the
epoch of the patch stage is chosen on the held-out training patients' whole images when the
run selects epochs (``select_epoch = "validation-auc"``), never on the test fold.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch.nn as nn

from arfl_studio.data.datasets.lesions import lesions_in_model_space
from arfl_studio.experiments.fold_evaluation import evaluate_auc
from arfl_studio.experiments.fold_plan import FoldPlan, derive_seed
from arfl_studio.training.patch_stage import PatchSource, train_patch_stage

log = logging.getLogger(__name__)
POINT_RADIUS = 4.0  # model pixels for a lesion marked by a point only


def _centre_and_radius(lesion) -> tuple[float, float, float] | None:
    """(row, col, radius) of a model-space lesion; None without a position."""
    if lesion.polygon is not None:
        points = np.asarray(lesion.polygon, dtype=np.float64)
        centre = points.mean(axis=0) if lesion.centre is None else np.asarray(lesion.centre)
        radius = float(np.sqrt(((points - centre) ** 2).sum(axis=1)).mean())
        return float(centre[0]), float(centre[1]), max(radius, 1.0)
    if lesion.box is not None:
        r0, r1, c0, c1 = lesion.box
        return (r0 + r1) / 2, (c0 + c1) / 2, max((r1 - r0 + c1 - c0) / 4, 1.0)
    if lesion.centre is not None:
        return float(lesion.centre[0]), float(lesion.centre[1]), POINT_RADIUS
    return None


def patch_sources(records: list, dataset) -> list[PatchSource]:
    """Each training image with its malignant and benign lesions in model space (``dataset``
    preprocesses ``records`` as the run does and knows each image's geometry)."""
    settings = dataset.settings
    sources = []
    for index, record in enumerate(records):
        image = dataset[index][0].numpy()
        malignant: list[tuple[float, float, float]] = []
        benign: list[tuple[float, float, float]] = []
        lesions = tuple(getattr(record, "lesions", ()) or ())
        if lesions:
            moved = lesions_in_model_space(lesions, dataset.geometry(index), settings.size, settings.fit)
            for original, lesion in zip(lesions, moved):
                where = _centre_and_radius(lesion)
                if where is None:
                    continue
                # a lesion of a malignant image without a pathology of its own counts as malignant
                bad = original.pathology == "malignant" or (original.pathology is None and int(record.label) == 1)
                (malignant if bad else benign).append(where)
        sources.append(PatchSource(image=image, label=int(record.label), malignant=malignant, benign=benign))
    return sources


def pretrain_on_patches(plan: FoldPlan, model: nn.Module, source, batches, cancel: threading.Event) -> None:
    """Run the patch stage on the fold's training patients (not the held-out ones, not the test fold)."""
    settings = plan.config.patch_stage
    dataset = source.dataset(plan.train_records)
    if not hasattr(dataset, "geometry"):
        raise ValueError("[patch_stage] needs a DICOM dataset with lesion marks, not synthetic data")
    validate = None
    if plan.config.training.select_epoch == "validation-auc":
        inner = batches.loader.passes([batches.threshold[i : i + 16] for i in range(0, len(batches.threshold), 16)])

        def validate(m):
            return evaluate_auc(m, inner, plan.device, plan.config.evaluation, adversarial=False)["standard_auc"]

    history = train_patch_stage(
        model,
        patch_sources(plan.train_records, dataset),
        plan.method,
        settings,
        plan.device,
        seed=derive_seed(plan.seed, "patch_stage"),
        pos_weight=None,
        validate=validate,
        cancel=cancel,
        progress=lambda e, n, m: log.info("%s fold %s patch stage %d/%d %s", plan.key, plan.fold, e, n, m),
    )
    if history["selected_epoch"] is not None:  # the whole-image epochs must beat the patch stage's best
        plan.selection.consider(0, max(history["validation_auc"]), model)
    plan.manifest["patch_stage"] = {
        "epochs": settings.epochs,
        "loss": history["loss"],
        "validation_auc": history["validation_auc"],
        "selected_epoch": history["selected_epoch"],
    }
    plan.write_manifest()
