"""The cache: stale content after an in-place rewrite, --rehash, fit in the key,
leftovers of killed processes, and the preprocess command's contact sheet."""

from __future__ import annotations

import json
import os

import numpy as np
from helpers_data import phantom, write_dicom
from test_data_leftovers import dead_pid

from arfl_studio.data import (
    ImageRecord,
    MammogramDataset,
    PreprocessSettings,
    generate_demo_dataset,
    preprocess_records,
    refresh_content_hashes,
)
from arfl_studio.data.preprocess.cache import PreprocessCache
from arfl_studio.data.preprocess.geometry import native_to_model_point, placement
from arfl_studio.data.preprocess.transform import compute_geometry


def _record(path, label=0):
    return ImageRecord(path=path, rel_path=path.name, patient_id="P", laterality="L", view="CC", label=label)


def _rewrite_in_place(path, intensity):
    """New pixels, same size, mtime put back to the nanosecond (as some copy tools do)."""
    before = os.stat(path)
    fresh = write_dicom(path.parent / "fresh.dcm", intensity)
    data = fresh.read_bytes()
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:  # same inode, same size
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns and os.stat(path).st_size == before.st_size


def test_a_file_rewritten_in_place_with_the_same_size_and_mtime_is_not_served_stale(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", phantom(48, 40))
    settings = PreprocessSettings(size=(24, 20), channels=1, crop="none", orient=False)
    cache = tmp_path / "cache"
    assert preprocess_records([_record(path)], settings, cache).decoded == 1
    old = MammogramDataset([_record(path)], settings, cache).image(0)
    flipped = phantom(48, 40)[::-1].copy()  # different pixels, same encoded size
    _rewrite_in_place(path, flipped)
    again = preprocess_records([_record(path)], settings, cache)
    assert again.decoded == 1 and again.cached == 0  # the ctime changed: hashed anew
    new = MammogramDataset([_record(path)], settings, cache).image(0)
    assert not np.allclose(new, old)
    np.testing.assert_allclose(new, MammogramDataset([_record(path)], settings).image(0), atol=1e-3)


def test_rehash_recomputes_hashes_the_memo_got_wrong(tmp_path, capsys):
    from arfl_studio.cli import main

    demo = generate_demo_dataset(tmp_path / "demo", patients=1, size=(40, 32))
    cache = tmp_path / "cache"
    argv = ["preprocess", str(demo), "--cache", str(cache), "--size", "16", "16"]
    assert main(argv + ["--json", str(tmp_path / "first.json")]) == 0
    first = json.loads((tmp_path / "first.json").read_text())
    assert first["preprocess"]["decoded"] == first["images"] > 0
    # a file system whose stamps do not move (network shares, some restores): the memo
    # still says the old hash for the new bytes
    index_path = cache / PreprocessCache.INDEX
    index = json.loads(index_path.read_text())
    victim = sorted(index)[0]
    real = index[victim][4]
    index[victim][4] = "0" * 64
    index_path.write_text(json.dumps(index))
    assert main(argv + ["--rehash", "--json", str(tmp_path / "second.json")]) == 0
    second = json.loads((tmp_path / "second.json").read_text())
    assert second["rehash"]["changed"] == [victim]
    assert json.loads(index_path.read_text())[victim][4] == real
    assert second["preprocess"]["cached"] == first["images"]  # the right hash finds the right entries
    # the function scan --verify can call
    index[victim][4] = "1" * 64
    index_path.write_text(json.dumps(index))
    assert refresh_content_hashes([victim], cache) == [victim]
    assert refresh_content_hashes([victim], cache) == []


def test_pad_places_the_crop_where_placement_says_and_is_part_of_the_key(tmp_path):
    img = np.zeros((200, 100), np.float32)
    img[20:180, 0:40] = 0.6  # a tall breast block: crop 160 x 40
    img[100:104, 20:24] = 1.0  # a marker
    path = write_dicom(tmp_path / "tall.dcm", img)
    pad = PreprocessSettings(size=(32, 32), channels=1, margin=0.0, fit="pad")
    stretch = PreprocessSettings(size=(32, 32), channels=1, margin=0.0)
    assert pad.image_key() != stretch.image_key() and pad.geometry_key() == stretch.geometry_key()
    out = MammogramDataset([_record(path)], pad).image(0)
    from arfl_studio.data import read_mammogram

    pixels = read_mammogram(path).pixels
    geometry = compute_geometry(pixels, pad)
    place = placement(geometry.crop_shape, (32, 32), "pad")
    assert (place.rows, place.cols) == (32, 8)
    inside = np.zeros_like(out, dtype=bool)
    inside[place.top : place.top + place.rows, place.left : place.left + place.cols] = True
    assert np.all(out[~inside] == 0.0) and out[inside].mean() > 0.5
    peak = np.unravel_index(np.argmax(out), out.shape)
    expected = native_to_model_point(102.0, 22.0, geometry, (32, 32), "pad")
    assert abs(peak[0] + 0.5 - expected[0]) <= 1.0 and abs(peak[1] + 0.5 - expected[1]) <= 1.0
    # both fits side by side in one cache
    cache = tmp_path / "cache"
    assert preprocess_records([_record(path)], stretch, cache).decoded == 1
    assert preprocess_records([_record(path)], pad, cache).decoded == 1
    np.testing.assert_allclose(MammogramDataset([_record(path)], pad, cache).image(0), out, atol=2e-3)


def test_fit_comes_through_an_experiment_config(tmp_path):
    from arfl_studio.experiments.config import load_config

    config = load_config({"data": {"demo": True}, "preprocess": {"fit": "pad", "size": [32, 32]}})
    settings = PreprocessSettings(**{**config.preprocess, "size": tuple(config.preprocess["size"])})
    assert settings.fit == "pad" and settings.crop == "breast"


def test_temp_files_of_killed_processes_are_cleaned_from_the_cache(tmp_path):
    path = write_dicom(tmp_path / "a.dcm")
    cache = tmp_path / "cache"
    preprocess_records([_record(path)], PreprocessSettings(size=(16, 16)), cache)
    entry = next((cache / "images").rglob("*.npy"))
    pid = dead_pid()
    leftover = entry.parent / f".{entry.name}.p{pid}.k3j4h5g6.tmp"
    live = entry.parent / f".{entry.name}.p{os.getpid()}.k3j4h5g7.tmp"
    user = cache / "my-notes.tmp"
    for p in (leftover, live, user):
        p.write_bytes(b"x")
        os.utime(p, (1_000_000_000, 1_000_000_000))
    preprocess_records([_record(path)], PreprocessSettings(size=(16, 16)), cache)
    assert not leftover.exists() and live.exists() and user.exists() and entry.exists()


def test_contact_sheet_draws_every_image_with_its_native_box(tmp_path):
    from matplotlib import image as mpimg

    from arfl_studio.cli import main

    demo = generate_demo_dataset(tmp_path / "demo", patients=2, size=(64, 52))
    sheet = tmp_path / "sheet.png"
    out = tmp_path / "pp.json"
    assert main(["preprocess", str(demo), "--sheet-only", "--contact-sheet", str(sheet), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    boxes = result["contact_sheet"]["boxes"]
    assert len(boxes) == result["images"] and "preprocess" not in result  # --sheet-only: no cache work
    png = mpimg.imread(sheet)
    assert png.ndim == 3 and png.shape[0] > 100 and png.shape[1] > 100
    red = (png[..., 0] > 0.9) & (png[..., 1] < 0.4) & (png[..., 2] < 0.4)
    assert red.sum() > 20 * len(boxes)  # the boxes are drawn
    for entry in boxes:
        rows, cols = entry["shape"]
        r0, r1, c0, c1 = entry["native_box"]
        assert 0 <= r0 < r1 <= rows and 0 <= c0 < c1 <= cols
    # right breasts face the other way: their boxes sit at the right edge (the chest wall)
    flipped = [b for b in boxes if b["flip"]]
    assert flipped and all(b["native_box"][3] == b["shape"][1] for b in flipped)
