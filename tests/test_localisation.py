"""Localisation metrics: pointing game, energy inside lesions / off the breast, chance, paired tests."""

from __future__ import annotations

import numpy as np
import pytest
from realdata import mias_dev

from arfl_studio.data.datasets.lesions import Lesion, lesion_mask, read_lesion_table
from arfl_studio.evaluation.localisation import localise, paired_tests, summarise

SHAPE = (120, 100)


def _masks():
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    breast = ((yy - 60) / 50.0) ** 2 + (xx / 70.0) ** 2 <= 1  # half ellipse on the chest wall
    lesions = lesion_mask([Lesion("mass", centre=(60, 30), radius=6)], SHAPE)
    return breast, lesions


def _blob(row, col, sd=3.0):
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    return np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sd**2))


def test_a_map_on_the_lesion_hits_and_a_map_on_the_label_misses():
    breast, lesions = _masks()
    on = localise(_blob(60, 30), lesions, breast, spacing_mm=0.5, tolerance_mm=2)
    assert on.pointing == 1.0 and on.energy_off_breast < 0.01
    assert on.energy_inside == pytest.approx(1 - np.exp(-2), abs=0.05)  # a 2-sd disc of a Gaussian
    assert on.peak_distance_mm == 0.0
    off = localise(_blob(110, 95), lesions, breast, spacing_mm=0.5, tolerance_mm=2)  # the film label corner
    assert off.pointing == 0.0 and off.energy_inside < 0.01 and off.energy_off_breast > 0.9
    assert on.chance == pytest.approx(lesions.sum() / breast.sum())
    assert on.chance_pointing > on.chance  # the tolerance grows the target


def test_the_tolerance_is_in_millimetres():
    breast, lesions = _masks()
    near = _blob(60, 42)  # peak 6 px (3 mm at 0.5 mm/px) beyond the lesion edge
    assert localise(near, lesions, breast, spacing_mm=0.5, tolerance_mm=4).pointing == 1.0
    assert localise(near, lesions, breast, spacing_mm=0.5, tolerance_mm=2).pointing == 0.0
    assert localise(near, lesions, breast, spacing_mm=0.1, tolerance_mm=2).pointing == 1.0


def test_a_map_spread_evenly_on_the_breast_scores_chance_and_a_constant_map_has_no_peak():
    breast, lesions = _masks()
    spread = localise(breast.astype(float), lesions, breast)
    # tied maxima score as a random pick among them: the chance of the pointing game
    assert spread.pointing == pytest.approx(spread.chance_pointing)
    assert spread.energy_inside == pytest.approx(spread.chance) and spread.energy_off_breast == 0.0
    assert localise(np.ones(SHAPE), lesions, breast).pointing is None


def test_paired_tests_tell_a_method_that_finds_lesions_from_one_that_does_not():
    breast, lesions = _masks()
    rng = np.random.default_rng(0)
    good = [
        localise(_blob(60 + rng.integers(-3, 4), 30 + rng.integers(-3, 4)) + 0.01 * rng.random(SHAPE), lesions, breast) for _ in range(12)
    ]
    bad = [localise(_blob(rng.integers(20, 100), 60 + rng.integers(-5, 6)) + 0.01 * rng.random(SHAPE), lesions, breast) for _ in range(12)]
    summary = summarise(good)
    assert summary["images"] == 12 and summary["pointing"] == 1.0 and summary["energy_inside"] > summary["chance"]
    (test,) = paired_tests({"arfl": good, "standard": bad})
    assert test["images"] == 12
    assert test["pointing"]["only_first"] == 12 and test["pointing"]["p"] < 0.001
    assert test["energy_inside"]["p"] < 0.01
    (same,) = paired_tests({"a": good, "b": good})
    assert same["pointing"]["p"] == 1.0 and same["energy_inside"]["p"] == 1.0


def test_on_a_real_film_a_map_on_the_marked_lesion_beats_chance_and_the_film_label_is_off_the_breast():
    from arfl_studio.data import read_mammogram
    from arfl_studio.data.preprocess.crop import native_breast_mask

    root = mias_dev()
    mammogram = read_mammogram(root / "images" / "mdb023.dcm")  # one malignant circumscribed mass
    breast = native_breast_mask(mammogram.pixels)
    (lesion,) = read_lesion_table(root / "lesions.csv", root)[0]["images/mdb023.dcm"]
    lesions = lesion_mask([lesion], mammogram.pixels.shape)
    yy, xx = np.mgrid[0 : breast.shape[0], 0 : breast.shape[1]]
    on = np.exp(-((yy - lesion.centre[0]) ** 2 + (xx - lesion.centre[1]) ** 2) / (2 * 15.0**2))
    result = localise(on, lesions, breast, mammogram.pixel_spacing, tolerance_mm=5)
    assert result.pointing == 1.0 and result.energy_inside > 10 * result.chance
    bright_off_breast = np.where(~breast, mammogram.pixels, 0)  # film labels and markers
    assert localise(bright_off_breast, lesions, breast, mammogram.pixel_spacing).energy_off_breast == 1.0
