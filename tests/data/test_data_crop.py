"""The default crop keeps the breast and cuts labels, edge stripes and background.

Phantoms reproduce what cut real breasts under Otsu: a gradual skin-line fall-off
with a dim fatty rim, MONOCHROME1 files with a tissue-fitted SIGMOID window
(Hologic style: background and rim pressed together near black), burned-in labels
and bright detector-edge stripes, left and right, CC and MLO, and a detector-size
image. Each goes through a DICOM file and ``read_mammogram`` as in training, and the
crop box (native space) is measured against the phantom's true breast mask.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from arfl_studio.data import PreprocessSettings, compute_geometry, read_mammogram
from arfl_studio.data.preprocess.crop import breast_bbox
from arfl_studio.data.demo.dataset import dicom_for_view, render_demo_view
from arfl_studio.data.demo.image import breast_shape

MARGIN = 0.02


def _phantom(tmp_path, index, size, view, side, style, stripe, label=True):
    rng = np.random.default_rng([index, 5])
    shape = breast_shape(rng)
    truth = render_demo_view(np.random.default_rng([index, 6]), size, view, side, shape, [], label=label, stripe=stripe)
    photometric, voi = style
    ds = dicom_for_view(
        truth,
        photometric,
        patient_id="P",
        age=50,
        laterality=side,
        view=view,
        voi_function=voi,
        transfer_syntax="1.2.840.10008.1.2.1",
        study_uid="1.2.3",
        series_uid="1.2.3.1",
        sop_uid=f"1.2.3.1.{index}",
        instance=1,
    )
    path = tmp_path / f"{index}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return read_mammogram(path).pixels, truth


def _measure(pixels, truth, crop="breast"):
    geometry = compute_geometry(pixels, PreprocessSettings(crop=crop, margin=MARGIN))
    r0, r1, c0, c1 = geometry.native_box()
    breast = truth["breast"]
    kept = float(breast[r0:r1, c0:c1].sum() / breast.sum())
    return kept, (r0, r1, c0, c1)


def _allowed_box(breast):
    """The true breast's box grown by the margin and one working-copy pixel: a crop
    box inside it has cut everything that lies further out (labels, stripes, background)."""
    rows, cols = breast.shape
    found_r, found_c = np.flatnonzero(breast.any(axis=1)), np.flatnonzero(breast.any(axis=0))
    step = int(np.ceil(max(rows, cols) / 512))
    pad_r, pad_c = int(MARGIN * rows) + step, int(MARGIN * cols) + step
    return (max(0, found_r[0] - pad_r), min(rows, found_r[-1] + 1 + pad_r), max(0, found_c[0] - pad_c), min(cols, found_c[-1] + 1 + pad_c))


STYLES = [("MONOCHROME2", "LINEAR"), ("MONOCHROME1", "SIGMOID"), ("MONOCHROME2", "SIGMOID"), ("MONOCHROME1", "LINEAR")]
CASES = list(itertools.product(["CC", "MLO"], ["L", "R"], STYLES, [None, "far", "top", "bottom"]))


def test_default_crop_keeps_the_whole_breast_and_cuts_labels_and_stripes(tmp_path):
    kept_all, otsu_kept = [], []
    labels_away = 0
    for index, (view, side, style, stripe) in enumerate(CASES):
        pixels, truth = _phantom(tmp_path, index, (160, 128), view, side, style, stripe)
        kept, box = _measure(pixels, truth)
        kept_all.append(kept)
        name = f"{view} {side} {style} stripe={stripe}"
        assert kept >= 0.995, f"{name}: kept {kept:.4f} of the breast"
        a0, a1, b0, b1 = _allowed_box(truth["breast"])
        r0, r1, c0, c1 = box
        assert a0 <= r0 and r1 <= a1 and b0 <= c0 and c1 <= b1, f"{name}: box {box} reaches beyond the breast {a0, a1, b0, b1}"
        label_rows, label_cols = np.nonzero(truth["label"])
        if label_rows.size and (label_rows.max() < a0 or label_rows.min() >= a1 or label_cols.max() < b0 or label_cols.min() >= b1):
            labels_away += 1  # wholly outside the breast's box: the crop must leave it out (asserted above)
            assert not truth["label"][r0:r1, c0:c1].any()
        otsu_kept.append(_measure(pixels, truth, "otsu")[0])
    assert labels_away >= len(CASES) // 4  # the labels really were away from the breast in many phantoms
    print(f"breast crop: min kept {min(kept_all):.4f} over {len(CASES)} phantoms; otsu min {min(otsu_kept):.4f}")
    # the phantoms reproduce the real failure: Otsu's level falls inside the dim rim
    assert min(otsu_kept) < 0.98


def test_stripes_away_from_the_breast_are_cut_whole(tmp_path):
    # a small breast leaves room: the far-edge and bottom stripes are clear of it
    rng = np.random.default_rng(3)
    shape = {**breast_shape(rng), "depth": 0.55, "height": 0.6, "center": 0.45}
    for k, (stripe, view, side) in enumerate(itertools.product(["far", "bottom", "top"], ["CC", "MLO"], ["L", "R"])):
        truth = render_demo_view(np.random.default_rng([k, 9]), (200, 160), view, side, shape, [], stripe=stripe)
        r0, r1, c0, c1 = breast_bbox(truth["intensity"], margin=MARGIN)
        assert truth["stripe"].any() and not truth["stripe"][r0:r1, c0:c1].any(), (stripe, view, side, (r0, r1, c0, c1))
        assert truth["label"].any() and not truth["label"][r0:r1, c0:c1].any(), (stripe, view, side, (r0, r1, c0, c1))
        assert truth["breast"][r0:r1, c0:c1].sum() >= 0.995 * truth["breast"].sum()


def test_detector_size_image_keeps_the_breast(tmp_path):
    pixels, truth = _phantom(tmp_path, 99, (4096, 3328), "MLO", "R", ("MONOCHROME1", "SIGMOID"), "top")
    kept, (r0, r1, c0, c1) = _measure(pixels, truth)
    print(f"4096x3328 MONOCHROME1 SIGMOID MLO: kept {kept:.4f}")
    assert kept >= 0.995
    assert not truth["label"][r0:r1, c0:c1].any()


def test_odd_images_never_lose_tissue():
    rows, cols = 120, 100
    # nothing there: the whole image
    assert breast_bbox(np.zeros((rows, cols), np.float32)) == (0, rows, 0, cols)
    # tissue everywhere (no background): nothing is cut
    rng = np.random.default_rng(0)
    full = np.clip(0.5 + 0.1 * rng.standard_normal((rows, cols)), 0, 1).astype(np.float32)
    r0, r1, c0, c1 = breast_bbox(full)
    assert (r1 - r0) * (c1 - c0) >= 0.98 * rows * cols
    # a breast filling the chest-wall edge is not mistaken for an edge stripe
    img = np.zeros((rows, cols), np.float32)
    img[:, :60] = 0.6
    img[:, 60:64] = np.linspace(0.4, 0.05, 4)
    assert breast_bbox(img, margin=0.0)[2:] == (0, 64)
    # a flat, noise-free background at exactly zero with a faint rim: the rim stays
    img = np.zeros((rows, cols), np.float32)
    img[20:100, :50] = 0.5
    img[20:100, 50:70] = 0.04  # fatty rim, dimmer than 1/10 of the tissue
    assert breast_bbox(img, margin=0.0) == (20, 100, 0, 70)


@pytest.mark.parametrize("method", ["breast", "otsu", "threshold"])
def test_methods_stay_selectable(method):
    img = np.zeros((80, 60), np.float32)
    img[20:60, 0:30] = 0.7
    r0, r1, c0, c1 = breast_bbox(img, method, margin=0.0)
    assert (r0, r1, c0, c1) == (20, 60, 0, 30)
