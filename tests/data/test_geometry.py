"""Model space <-> native space: a map made on the model input lands on the anatomy."""

import numpy as np
import pytest

from arfl_studio.data.preprocess.geometry import Geometry, model_to_native, model_to_native_point, native_to_model_point, placement


def _model_input(native: np.ndarray, geometry: Geometry, size, fit):
    """Nearest-neighbour preprocessing, independent of the code under test."""
    oriented = native[:, ::-1] if geometry.flip else native
    r0, r1, c0, c1 = geometry.bbox
    crop = oriented[r0:r1, c0:c1]
    place = placement(crop.shape, size, fit)
    out = np.zeros(size, dtype=np.float32)
    rr = ((np.arange(place.rows) + 0.5) * crop.shape[0] / place.rows).astype(int)
    cc = ((np.arange(place.cols) + 0.5) * crop.shape[1] / place.cols).astype(int)
    out[place.top : place.top + place.rows, place.left : place.left + place.cols] = crop[np.ix_(rr, cc)]
    return out


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_a_spot_on_the_model_input_maps_back_onto_the_same_native_spot(flip, fit):
    shape = (400, 260)
    geometry = Geometry(flip=flip, bbox=(30, 370, 10, 200), shape=shape)
    native = np.zeros(shape, dtype=np.float32)
    native[250:262, 60:72] = 1.0  # the "lesion"
    model = _model_input(native, geometry, (64, 64), fit)
    back = model_to_native(model, geometry, fit)
    assert back.shape == shape
    peak = np.unravel_index(np.argmax(back), shape)
    assert abs(peak[0] - 256) <= 8 and abs(peak[1] - 66) <= 8
    # nothing lands outside the crop box
    r0, r1, c0, c1 = geometry.native_box()
    outside = back.copy()
    outside[r0:r1, c0:c1] = 0
    assert not outside.any()


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("fit", ["stretch", "pad"])
def test_points_round_trip(flip, fit):
    geometry = Geometry(flip=flip, bbox=(20, 300, 5, 105), shape=(320, 140))
    for row, col in [(25.0, 30.0), (150.5, 70.25), (299.0, 100.0)]:
        model = native_to_model_point(row, col if not flip else 140 - col, geometry, (50, 40), fit)
        assert model is not None
        native = model_to_native_point(*model, geometry, (50, 40), fit)
        assert native == pytest.approx((row, col if not flip else 140 - col), abs=1e-6)
    assert native_to_model_point(5.0, 50.0, geometry, (50, 40), fit) is None  # above the crop


def test_pad_keeps_the_aspect_ratio_and_centres_the_crop():
    place = placement((3400, 1000), (224, 224), "pad")
    assert place.rows == 224 and abs(place.cols - 66) <= 1
    assert place.left == (224 - place.cols) // 2 and place.top == 0
    assert placement((3400, 1000), (224, 224), "stretch") == placement((10, 10), (224, 224), "stretch")
    with pytest.raises(ValueError, match="fit must be one of"):
        placement((10, 10), (8, 8), "squash")


def test_native_box_undoes_the_flip():
    geometry = Geometry(flip=True, bbox=(0, 10, 0, 30), shape=(10, 100))
    assert geometry.native_box() == (0, 10, 70, 100)
    assert Geometry.from_dict(geometry.to_dict()) == geometry
