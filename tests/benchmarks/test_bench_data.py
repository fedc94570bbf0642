"""Data-layer benchmarks: ratios measured in the same run (run: pytest -m benchmark tests/benchmarks/test_bench_data.py -s).

- header scan, files per second, serial vs 2 processes (reported);
- first pass decode + preprocess, 2 processes vs serial: >= 1.6x;
- reading a cached epoch vs decoding it: >= 20x;
- peak memory preprocessing one 3328x2560 16-bit image: < 6x its raw size;
- the default "breast" crop on a 4096x3328 image: < 0.5x the time to read it.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import pytest

from arfl_studio.data import MammogramDataset, PreprocessSettings, generate_demo_dataset, preprocess_records, scan_dataset

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def big_demo(tmp_path_factory):
    # 48 images of 1024x832, all four transfer syntaxes: realistic decode work per file
    return generate_demo_dataset(tmp_path_factory.mktemp("bench") / "demo", patients=12, size=(1024, 832), seed=1)


def test_header_scan_serial_vs_parallel(tmp_path):
    root = generate_demo_dataset(tmp_path / "many", patients=150, size=(48, 40), seed=2)  # 600 files
    t = time.perf_counter()
    serial = scan_dataset(root, workers=1, scan_cache=False)  # both read every header
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    parallel = scan_dataset(root, workers=2, scan_cache=False)
    t_parallel = time.perf_counter() - t
    assert [r.rel_path for r in serial.images] == [r.rel_path for r in parallel.images]
    n = serial.files_seen
    print(
        f"\nheader scan: {n} files; serial {n / t_serial:.0f} files/s, 2 processes {n / t_parallel:.0f} files/s "
        f"(ratio {t_serial / t_parallel:.2f}x, includes process start-up)"
    )


def test_first_pass_parallel_vs_serial(big_demo, tmp_path):
    records = scan_dataset(big_demo, layout="cmmd").images
    settings = PreprocessSettings(size=(224, 224))
    t = time.perf_counter()
    serial = preprocess_records(records, settings, tmp_path / "serial", workers=1)
    t_serial = time.perf_counter() - t
    t = time.perf_counter()
    parallel = preprocess_records(records, settings, tmp_path / "parallel", workers=2)
    t_parallel = time.perf_counter() - t
    assert serial.decoded == parallel.decoded == len(records) and not serial.failed
    ratio = t_serial / t_parallel
    print(
        f"\nfirst pass decode+preprocess of {len(records)} images 1024x832 -> 224x224: serial {t_serial:.2f} s, "
        f"2 processes {t_parallel:.2f} s (spawn start-up included): {ratio:.2f}x"
    )
    assert ratio >= 1.6


def test_cached_epoch_vs_decoding(big_demo, tmp_path):
    records = scan_dataset(big_demo, layout="cmmd").images
    settings = PreprocessSettings(size=(224, 224))
    preprocess_records(records, settings, tmp_path / "cache", workers=1)
    decoding = MammogramDataset(records, settings)  # no cache: decodes every time
    cached = MammogramDataset(records, settings, tmp_path / "cache")
    cached[0]  # open the cache (hash memo) as a DataLoader worker would once
    t = time.perf_counter()
    for i in range(len(decoding)):
        decoding[i]
    t_decode = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(len(cached)):
        cached[i]
    t_cached = time.perf_counter() - t
    ratio = t_decode / t_cached
    print(f"\nepoch of {len(records)} images: decoding {t_decode * 1000:.0f} ms, from cache {t_cached * 1000:.1f} ms: {ratio:.0f}x")
    assert ratio >= 20


def test_peak_memory_of_a_full_size_mammogram(tmp_path):
    from arfl_studio.data.demo.dataset import build_dicom, render_view
    from arfl_studio.data.preprocess.transform import preprocess_file

    rows, cols = 3328, 2560
    rng = np.random.default_rng(0)
    shape = {"depth": 0.75, "height": 0.8, "center": 0.5, "pectoral": 0.3, "beta": 3.0, "density": 0.0}
    intensity = render_view(rng, (rows, cols), "MLO", shape, [])
    ds = build_dicom(
        intensity,
        patient_id="BIG",
        age=50,
        laterality="L",
        view="MLO",
        photometric="MONOCHROME1",
        voi_function="SIGMOID",
        transfer_syntax="1.2.840.10008.1.2.1",
        study_uid="1.2.3",
        series_uid="1.2.3.1",
        sop_uid="1.2.3.1.1",
        instance=1,
        flip=False,
    )
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    del ds, intensity
    raw = rows * cols * 2
    settings = PreprocessSettings(size=(224, 224))
    tracemalloc.start()
    t = time.perf_counter()
    image = preprocess_file(path, settings)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert image.shape == (224, 224)
    print(f"\n3328x2560 16-bit ({raw / 2**20:.1f} MiB raw): peak {peak / 2**20:.1f} MiB = {peak / raw:.2f}x raw, {seconds:.2f} s")
    assert peak < 6 * raw


def test_breast_crop_costs_less_than_reading_the_image(tmp_path):
    from arfl_studio.data import read_mammogram
    from arfl_studio.data.preprocess.crop import breast_bbox
    from arfl_studio.data.demo.dataset import dicom_for_view, render_demo_view
    from arfl_studio.data.demo.image import breast_shape

    truth = render_demo_view(np.random.default_rng(0), (4096, 3328), "MLO", "L", breast_shape(np.random.default_rng(1)), [], stripe="far")
    ds = dicom_for_view(
        truth,
        "MONOCHROME1",
        patient_id="BIG",
        age=50,
        laterality="L",
        view="MLO",
        voi_function="SIGMOID",
        transfer_syntax="1.2.840.10008.1.2.1",
        study_uid="1.2.3",
        series_uid="1.2.3.1",
        sop_uid="1.2.3.1.2",
        instance=1,
    )
    path = tmp_path / "big.dcm"
    ds.save_as(path, enforce_file_format=True)
    del ds, truth
    t = time.process_time()
    pixels = read_mammogram(path).pixels
    t_read = time.process_time() - t
    t = time.process_time()
    breast_bbox(pixels)
    t_breast = time.process_time() - t
    t = time.process_time()
    breast_bbox(pixels, "otsu")
    t_otsu = time.process_time() - t
    print(
        f"\n4096x3328: read {t_read * 1000:.0f} ms, breast crop {t_breast * 1000:.0f} ms "
        f"({t_breast / t_read:.2f}x), otsu crop {t_otsu * 1000:.0f} ms"
    )
    assert t_breast < 0.5 * t_read
