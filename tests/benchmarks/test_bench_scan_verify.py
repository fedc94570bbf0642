"""``scan --verify`` against the header-only scan (run: pytest -m benchmark tests/benchmarks/test_bench_scan_verify.py -s).

Same dataset, same run: header-only scan (1 process, the default) vs the verify pass that
decodes every image, serial and in 2 spawn processes. Reported as files/s and ratios; asserted:
verify finds the same usable images, and 2 processes decode faster than 1.
"""

from __future__ import annotations

import os
import time

import pytest

from arfl_studio.data import generate_demo_dataset, scan_dataset, verify_scan

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    # 64 images of 1024x832 in the demo's four transfer syntaxes (RLE, JPEG 2000, JPEG-LS, plain)
    return generate_demo_dataset(tmp_path_factory.mktemp("bench") / "demo", patients=16, size=(1024, 832), seed=4)


def test_verify_throughput_against_header_scan(dataset):
    t = time.perf_counter()
    header = scan_dataset(dataset, scan_cache=False)  # the header read itself, not the cache
    t_header = time.perf_counter() - t
    n = len(header.images)
    timings = {}
    for workers in (1, 2):
        result = scan_dataset(dataset)
        t = time.perf_counter()
        verify_scan(result, workers=workers)
        timings[workers] = time.perf_counter() - t
        assert result.verified and [r.rel_path for r in result.images] == [r.rel_path for r in header.images]
    print(
        f"\n{n} images 1024x832: header scan {n / t_header:.0f} files/s ({t_header:.2f} s); "
        f"verify 1 process {n / timings[1]:.1f} files/s ({timings[1]:.2f} s), "
        f"2 processes {n / timings[2]:.1f} files/s ({timings[2]:.2f} s, spawn start-up included); "
        f"verify(2) is {timings[2] / t_header:.1f}x the header scan's time, 2 vs 1 process {timings[1] / timings[2]:.2f}x; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    assert timings[2] < timings[1]
