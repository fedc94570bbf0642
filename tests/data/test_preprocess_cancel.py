"""Cancel inside preprocessing (issue 26 item 17): between the steps of one image (a 20000 x 20000
film takes minutes) and per file of a pass; an image stopped half-way stores nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from arfl_studio.data import generate_demo_dataset, scan_dataset
from arfl_studio.data.preprocess import transform
from arfl_studio.data.preprocess.dataset import preprocess_records
from arfl_studio.data.preprocess.settings import PreprocessSettings
from arfl_studio.data.preprocess.transform import PreprocessCancelled, preprocess_pixels


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=1, size=(64, 52), seed=1)
    return scan_dataset(root).images[:3]


def _cancel_during_geometry(monkeypatch, cancel: threading.Event, on_call: int = 1) -> list:
    """Ctrl-C arrives while the crop geometry of the ``on_call``-th image is computed."""
    calls, real = [], transform.compute_geometry

    def geometry_then_ctrl_c(*args, **kwargs):
        calls.append(1)
        result = real(*args, **kwargs)
        if len(calls) == on_call:
            cancel.set()
        return result

    monkeypatch.setattr(transform, "compute_geometry", geometry_then_ctrl_c)
    return calls


def test_a_cancel_during_one_step_stops_before_the_next(monkeypatch):
    cancel = threading.Event()
    _cancel_during_geometry(monkeypatch, cancel)
    resized = []
    monkeypatch.setattr(transform, "fit_image", lambda *a, **k: resized.append(1))
    pixels = np.random.default_rng(0).random((120, 90), dtype=np.float32)
    with pytest.raises(PreprocessCancelled):
        preprocess_pixels(pixels, PreprocessSettings(size=(32, 32), channels=1), cancel=cancel)
    assert not resized, "the image was resized after the cancel"


def test_a_pass_cancelled_within_an_image_keeps_the_images_before_it_and_nothing_of_it(monkeypatch, records, tmp_path):
    cancel = threading.Event()
    calls = _cancel_during_geometry(monkeypatch, cancel, on_call=2)
    settings = PreprocessSettings(size=(32, 32), channels=1)
    report = preprocess_records(records, settings, tmp_path / "cache", cancel=cancel)
    assert report.cancelled and report.decoded == 1 and len(calls) == 2  # the third image was not started
    assert len(list((tmp_path / "cache" / "images").rglob("*.npy"))) == 1
    monkeypatch.undo()
    again = preprocess_records(records, settings, tmp_path / "cache")
    assert not again.cancelled and (again.cached, again.decoded) == (1, len(records) - 1)


def test_a_cancel_before_the_pass_hashes_and_decodes_nothing(records, tmp_path):
    cancel = threading.Event()
    cancel.set()
    report = preprocess_records(records, PreprocessSettings(size=(32, 32), channels=1), tmp_path / "cache", workers=2, cancel=cancel)
    assert report.cancelled and report.decoded == report.cached == 0
    assert not list((tmp_path / "cache").rglob("*.npy"))
