"""The "breast-only" crop: the breast and nothing else in the model input, on a phantom film and
on a real digitised film of mias-dev (skipped where ../shared/realdata is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from arfl_studio.data import PreprocessSettings
from arfl_studio.data.preprocess.breast_region import breast_region, foreign_components
from arfl_studio.data.preprocess.transform import preprocess_pixels

from realdata import mias_dev


def film_phantom(rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """A breast against the chest wall on the right, a burned-in label block, zero padding around
    the film and a saturated scanner stripe; returns (pixels, a lesion centre near the skin line)."""
    image = np.zeros((400, 320), np.float32)
    film = image[20:380, 16:304]  # zero padding around the film
    film[:] = 0.06 + 0.01 * rng.standard_normal(film.shape).astype(np.float32)  # film background
    rows, cols = np.ogrid[:360, :288]
    breast = ((rows - 180) / 160.0) ** 2 + ((cols - 288) / 170.0) ** 2 < 1.0
    film[breast] = 0.45 + 0.05 * rng.standard_normal(int(breast.sum())).astype(np.float32)
    lesion = (180, 288 - 160)  # 10 px inside the skin line, film coordinates
    near = (rows - lesion[0]) ** 2 + (cols - lesion[1]) ** 2 < 36
    film[near] = 0.8
    film[30:60, 20:90] = 0.95  # label block, away from the breast
    film[:, :3] = 1.0  # saturated scanner stripe on the far edge
    return np.clip(image, 0.0, 1.0), (lesion[0] + 20, lesion[1] + 16)


def test_phantom_label_and_stripe_are_blanked_and_the_skin_line_lesion_kept():
    pixels, (ly, lx) = film_phantom(np.random.default_rng(0))
    assert foreign_components(pixels) >= 1  # the label block stands apart from the breast
    region = breast_region(pixels)
    assert region[ly, lx] and not region[45, 60]  # lesion at the skin line in, label out
    settings = PreprocessSettings(crop="breast-only", size=(128, 96), channels=1, fit="pad", intensity="breast-percentile")
    image, geometry = preprocess_pixels(pixels, settings)
    assert geometry.masked and geometry.flip  # chest wall moved to the left
    assert foreign_components(image) == 0
    r0, r1, c0, c1 = geometry.bbox
    assert r0 <= ly < r1 and c0 <= pixels.shape[1] - 1 - lx < c1  # the lesion is inside the crop
    assert float(image.max()) == pytest.approx(1.0) and float(image.min()) == 0.0


def test_film_without_the_new_crop_keeps_the_label():
    pixels, _ = film_phantom(np.random.default_rng(1))
    image, geometry = preprocess_pixels(pixels, PreprocessSettings(crop="none", orient=False, size=(100, 80), channels=1))
    assert not geometry.masked and foreign_components(image) >= 1


def test_real_film_label_blocks_are_gone_and_the_lesion_at_the_skin_line_kept():
    from arfl_studio.data import read_mammogram

    pixels = read_mammogram(mias_dev() / "images" / "mdb110.dcm").pixels  # malignant, 23 px from the skin line
    lesion = (596, 190)  # row, column (lesions.csv: x 190, y 596)
    assert foreign_components(pixels) >= 1  # a burned-in film label
    settings = PreprocessSettings(crop="breast-only", size=(256, 192), channels=1, fit="pad", intensity="breast-percentile")
    image, geometry = preprocess_pixels(pixels, settings)
    assert foreign_components(image) == 0
    assert breast_region(pixels)[lesion]
    r0, r1, c0, c1 = geometry.bbox
    column = pixels.shape[1] - 1 - lesion[1] if geometry.flip else lesion[1]
    assert r0 <= lesion[0] < r1 and c0 <= column < c1


def test_contact_sheet_shades_what_the_breast_only_crop_blanks(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from arfl_studio.data.preprocess import crop_sheet

    pixels, _ = film_phantom(np.random.default_rng(3))
    monkeypatch.setattr(crop_sheet, "read_mammogram", lambda path: SimpleNamespace(pixels=pixels, pixel_spacing=(0.2, 0.2)))
    record = SimpleNamespace(path="phantom", rel_path="phantom", lesions=())
    boxes = crop_sheet.crop_boxes([record], PreprocessSettings(crop="breast-only"))
    region = boxes[0]["_region"]
    assert region.max() == 1.0 and region.min() == 0.0  # breast in, label and padding out
    out = crop_sheet.write_contact_sheet(tmp_path / "sheet.png", boxes)
    assert out.read_bytes()[:4] == b"\x89PNG"
