"""A frame chosen at scan time is the frame that is preprocessed, cached and trained on."""

import numpy as np

from arfl_studio.data import MammogramDataset, PreprocessSettings, preprocess_records, scan_dataset
from arfl_studio.experiments.sources import record_from_dict, record_to_dict

from helpers_data import write_dicom


def _three_frames(ds):
    base = np.frombuffer(ds.PixelData, dtype="<u2").reshape(ds.Rows, ds.Columns)
    # frame k: the tissue shifted down by 8k rows, so each frame preprocesses differently
    ds.PixelData = np.stack([np.roll(base, 8 * k, axis=0) for k in range(3)]).astype("<u2").tobytes()
    ds.NumberOfFrames = 3


def test_each_chosen_frame_is_preprocessed_and_cached_apart(tmp_path):
    root = tmp_path / "data"
    write_dicom(root / "malignant" / "tomo.dcm", edit=_three_frames)
    settings = PreprocessSettings(size=(32, 32), channels=1)
    images = {}
    for frame in (1, 3):
        scan = scan_dataset(root, frame=frame)
        (record,) = scan.images
        assert record.frame == frame
        report = preprocess_records(scan.images, settings, tmp_path / "cache")
        assert not report.failed and report.decoded == 1  # frame 3 is not served frame 1's cache entry
        cached = MammogramDataset(scan.images, settings, tmp_path / "cache").image(0)
        uncached = MammogramDataset(scan.images, settings).image(0)
        np.testing.assert_allclose(cached, uncached, atol=2e-3)  # float16 cache
        images[frame] = cached
        # a run folder's records keep the frame
        again = record_from_dict(str(root), record_to_dict(record))
        assert again.frame == frame
    assert not np.allclose(images[1], images[3], atol=0.05)
