"""Does opening a JPEG 2000 mammogram freeze the window? A 10 ms heartbeat timer runs on the UI
thread while the Viewer opens a 5000x5000 16-bit JPEG 2000 lossless file; the longest gap between
beats and their 99th percentile are printed for the old path (decode in the worker thread, whose
decoder plugin holds the GIL) and the new one (decode in the app's decoder process), same run.

Goal (issue 25): longest gap < 100 ms and p99 < 20 ms with the decoder process.

Run: pytest -m benchmark tests/benchmarks/test_bench_decode_freeze.py -s
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytestmark = pytest.mark.benchmark

SIDE = 5000


@pytest.fixture(scope="module")
def j2k_file(tmp_path_factory):
    """A 5000x5000, 16-bit, JPEG 2000 lossless mammogram (pydicom + pylibjpeg-openjpeg encoder)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalMammographyXRayImageStorageForPresentation, ExplicitVRLittleEndian, JPEG2000Lossless, generate_uid

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    breast = np.exp(-((x - 1200) ** 2 + (y - SIDE / 2) ** 2) / (2 * 1500.0**2))
    pixels = (8000 + 40000 * breast + rng.normal(0, 300, (SIDE, SIDE))).clip(0, 65535).astype(np.uint16)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Modality, ds.PatientID, ds.ImageLaterality, ds.ViewPosition = "MG", "BENCH", "L", "CC"
    ds.Rows = ds.Columns = SIDE
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelSpacing = [0.07, 0.07]
    ds.PixelData = pixels.tobytes()
    ds.compress(JPEG2000Lossless, pixels)
    path = tmp_path_factory.mktemp("j2k") / "big_j2k.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


class Heartbeat:
    """A 10 ms QTimer on the UI thread; the gaps between its beats show how long the window froze."""

    def __init__(self):
        from PySide6.QtCore import Qt, QTimer

        self.beats: list[float] = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.beats.append(time.perf_counter()))

    def start(self) -> None:
        self.beats = [time.perf_counter()]
        self.timer.start()

    def stop(self) -> dict:
        self.timer.stop()
        beats = np.array(self.beats + [time.perf_counter()])
        gaps = np.diff(beats) * 1000
        late = [(round(t - beats[0], 2), round(g)) for t, g in zip(beats[1:], gaps) if g > 20]
        return {"longest_ms": float(gaps.max()), "p99_ms": float(np.percentile(gaps, 99)), "beats": len(gaps), "late": late[:6] + late[-6:]}


def _open(qtbot, viewer, record) -> dict:
    heartbeat = Heartbeat()
    heartbeat.start()
    start = time.perf_counter()
    with qtbot.waitSignal(viewer.views_ready, timeout=180_000):
        viewer.show_record(record, [record])
    seconds = time.perf_counter() - start
    qtbot.wait(300)  # the first paints of the new image count too
    return dict(heartbeat.stop(), seconds=seconds)


def test_opening_a_jpeg2000_mammogram_does_not_freeze_the_window(qtbot, j2k_file):
    from arfl_studio.data.datasets.layouts import ImageRecord
    from arfl_studio.data.dicom import decode_pool
    from arfl_studio.gui.app import make_app
    from arfl_studio.gui.panes.viewer_pane import ViewerPane

    app = make_app([])
    viewer = ViewerPane()
    qtbot.addWidget(viewer)
    viewer.resize(1280, 800)
    viewer.show()
    record = ImageRecord(path=j2k_file, rel_path=j2k_file.name, patient_id="BENCH", laterality="L", view="CC", label=0)
    idle = Heartbeat()
    idle.start()
    qtbot.wait(3000)
    idle = dict(idle.stop(), seconds=3.0)
    try:
        decode_pool.install(None)  # the old path: decode in the viewer's worker thread
        old = _open(qtbot, viewer, record)
    finally:
        decode_pool.install(app.decode_pool)
    new = _open(qtbot, viewer, record)  # includes starting the decoder processes
    assert viewer.views["LCC"]["pixels"].shape == (SIDE, SIDE)
    print(f"\nopening a {SIDE}x{SIDE} 16-bit JPEG 2000 mammogram, 10 ms UI heartbeat:")
    for name, r in (("idle (machine noise)", idle), ("worker thread (old)", old), ("decoder process (new)", new)):
        print(
            f"  {name:22s} longest gap {r['longest_ms']:7.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
            f"({r['beats']} beats over {r['seconds']:.1f} s; gaps > 20 ms at s: {r['late']})"
        )
    assert new["longest_ms"] < 100 and new["p99_ms"] < 20
    assert old["longest_ms"] > new["longest_ms"]
