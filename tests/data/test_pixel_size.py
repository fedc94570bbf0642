"""A fixed model pixel size (``[preprocess] pixel_mm``): every breast at one physical scale,
whatever its size or its detector's pixel spacing, with overlays and lesions still registered."""

import numpy as np
import pytest

from arfl_studio.data.datasets.lesions import Lesion, lesions_in_model_space
from arfl_studio.data.preprocess.geometry import Geometry, model_to_native, model_to_native_point, native_to_model_point, placement
from arfl_studio.data.preprocess.settings import PreprocessSettingError, PreprocessSettings
from arfl_studio.data.preprocess.transform import preprocess_pixels


def _film(spacing_mm: float, breast_mm=(120.0, 70.0), lesion_mm=(60.0, 30.0)) -> np.ndarray:
    """A half-ellipse breast of a given physical size on a 200 x 150 mm detector, and a 6 mm lesion."""
    rows, cols = int(round(200 / spacing_mm)), int(round(150 / spacing_mm))
    r, c = np.mgrid[:rows, :cols] * spacing_mm
    image = np.zeros((rows, cols), np.float32)
    breast = ((r - 100) / (breast_mm[0] / 2)) ** 2 + (c / breast_mm[1]) ** 2 < 1
    image[breast] = 0.5
    image[(r - lesion_mm[0] - 40) ** 2 + (c - lesion_mm[1]) ** 2 < 9] = 0.9
    return image


def _extent(image: np.ndarray) -> tuple[int, int]:
    rows, cols = np.nonzero(image > 0.02)
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def test_detectors_with_different_pixel_spacing_give_one_physical_scale():
    settings = PreprocessSettings(crop="breast-only", size=(256, 192), fit="pad", channels=1, pixel_mm=0.8)
    fine, fine_geometry = preprocess_pixels(_film(0.1), settings, spacing=(0.1, 0.1))
    coarse, coarse_geometry = preprocess_pixels(_film(0.2), settings, spacing=(0.2, 0.2))
    assert fine_geometry.scale == pytest.approx(0.125) and coarse_geometry.scale == pytest.approx(0.25)
    for image in (fine, coarse):  # 120 x 70 mm of breast (+ the crop's margin) at 0.8 mm
        rows, cols = _extent(image)
        assert rows == pytest.approx(120 / 0.8, abs=4) and cols == pytest.approx(70 / 0.8, abs=4)
    letterboxed, _ = preprocess_pixels(
        _film(0.2), PreprocessSettings(crop="breast-only", size=(256, 192), fit="pad", channels=1), spacing=(0.2, 0.2)
    )
    assert _extent(letterboxed)[0] > 200  # without pixel_mm the same breast is magnified to fill the input


def test_a_breast_too_large_for_the_input_shrinks_to_fit():
    settings = PreprocessSettings(crop="breast-only", size=(128, 96), fit="pad", channels=1, pixel_mm=0.8)
    image, geometry = preprocess_pixels(_film(0.2), settings, spacing=(0.2, 0.2))
    place = placement(geometry.crop_shape, settings.size, settings.fit, geometry.scale)
    assert place.rows == 128 or place.cols == 96  # fits exactly in one direction
    assert place.rows / geometry.crop_shape[0] < geometry.scale


def test_without_a_pixel_spacing_the_crop_fills_the_input():
    settings = PreprocessSettings(crop="breast-only", size=(256, 192), fit="pad", channels=1, pixel_mm=0.8)
    _, geometry = preprocess_pixels(_film(0.2), settings, spacing=None)
    assert geometry.scale is None


@pytest.mark.parametrize("flip", [False, True])
def test_points_maps_and_lesions_stay_registered_at_a_fixed_scale(flip):
    geometry = Geometry(flip=flip, bbox=(100, 700, 0, 350), shape=(1000, 750), masked=True, scale=0.25)
    size = (256, 192)
    assert Geometry.from_dict(geometry.to_dict()) == geometry
    point = native_to_model_point(400.0, 500.0 if flip else 250.0, geometry, size, "pad")
    assert point is not None
    back = model_to_native_point(*point, geometry, size, "pad")
    assert back == pytest.approx((400.0, 500.0 if flip else 250.0))
    model_map = np.zeros(size, np.float32)
    model_map[int(point[0]) - 2 : int(point[0]) + 3, int(point[1]) - 2 : int(point[1]) + 3] = 1.0
    native = model_to_native(model_map, geometry, "pad")
    peak = np.unravel_index(np.argmax(native), native.shape)
    assert abs(peak[0] - 400) <= 12 and abs(peak[1] - (500 if flip else 250)) <= 12
    (moved,) = lesions_in_model_space(
        [Lesion("mass", "CIRC", "malignant", None, centre=(400.0, 500.0 if flip else 250.0), radius=20.0)], geometry, size, "pad"
    )
    assert moved.centre == pytest.approx(point, abs=1.0)  # pixel indices vs continuous coordinates: < 1 px apart
    radius = np.sqrt(((np.asarray(moved.polygon) - np.asarray(moved.centre)) ** 2).sum(axis=1)).mean()
    assert radius == pytest.approx(20 * 0.25, rel=0.05)  # 20 native pixels at 0.25 model pixels each


def test_pixel_mm_is_checked_and_keys_the_cache():
    with pytest.raises(PreprocessSettingError, match="pixel_mm"):
        PreprocessSettings(pixel_mm=0.0, fit="pad")
    with pytest.raises(PreprocessSettingError, match='fit = "pad"'):
        PreprocessSettings(pixel_mm=0.8, fit="stretch")
    plain, fixed = PreprocessSettings(fit="pad"), PreprocessSettings(fit="pad", pixel_mm=0.8)
    assert plain.geometry_key() != fixed.geometry_key() and plain.image_key() != fixed.image_key()
    assert PreprocessSettings(fit="pad", pixel_mm=0.4).image_key() != fixed.image_key()


def test_preprocess_command_takes_a_pixel_size_and_refuses_it_without_pad(tmp_path, capsys):
    from arfl_studio.cli import main
    from arfl_studio.data import generate_demo_dataset

    demo = generate_demo_dataset(tmp_path / "demo", patients=1, size=(40, 32))
    argv = ["preprocess", str(demo), "--cache", str(tmp_path / "cache"), "--size", "32", "32", "--pixel-mm", "2"]
    assert main(argv) == 2 and 'fit = "pad"' in capsys.readouterr().err
    assert main(argv + ["--fit", "pad", "--json", str(tmp_path / "done.json")]) == 0
    assert (tmp_path / "done.json").is_file()
