"""The resumable scan: header reads are cached per file (path, size, mtime) as they arrive, so a
scan interrupted by Stop or Ctrl-C resumes where it stopped and gives the same records."""

from __future__ import annotations

import csv
import os

import pytest
from helpers_data import cancel_at, write_dicom

from arfl_studio.data import scan_dataset
from arfl_studio.data.datasets import file_jobs
from arfl_studio.data.datasets.scan_cache import ScanCache
from arfl_studio.run_lock import acquire

N = 12


def _stripped(ds):
    """RSNA files: Digital X-Ray SOP class, no Modality, no ViewPosition, ImageLaterality only."""
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    for name in ("Modality", "ViewPosition", "ViewCodeSequence", "BodyPartExamined"):
        if name in ds:
            delattr(ds, name)


@pytest.fixture
def rsna(tmp_path):
    root = tmp_path / "rsna-breast-cancer-detection"
    rows = [["site_id", "patient_id", "image_id", "laterality", "view", "age", "cancer", "biopsy", "invasive", "BIRADS"]]
    for i in range(N):
        patient, side = str(10000 + i // 2), "LR"[i % 2]
        write_dicom(root / "train_images" / patient / f"{i + 1000}.dcm", laterality=side, edit=_stripped)
        rows.append(["1", patient, str(i + 1000), side, "CC" if i % 3 else "MLO", "60", str(int(i % 4 == 0)), "0", "0", ""])
    (root / "train_images" / "10000" / "broken.dcm").write_bytes(b"not a dicom file")  # a refusal is cached too
    with open(root / "train.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root


@pytest.fixture
def reads(monkeypatch):
    """The files whose header this process reads (one worker: the reads happen here)."""
    seen: list[str] = []
    real = file_jobs.header_job

    def counting(path, **kw):
        seen.append(os.path.basename(path))
        return real(path, **kw)

    monkeypatch.setattr(file_jobs, "header_job", counting)
    return seen


def _records(scan):
    return [r.to_json() for r in scan.images], [tuple(r) for r in scan.rejected], scan.unlabeled, scan.excluded


def test_an_interrupted_scan_resumes_where_it_stopped_and_gives_the_same_records(rsna, reads):
    whole = scan_dataset(rsna, scan_cache=False)
    assert len(whole.images) == N and len(whole.rejected) == 1
    reads.clear()
    cancel, _seen, progress = cancel_at(5)
    first = scan_dataset(rsna, cancel=cancel, progress=progress)
    assert first.cancelled and len(reads) == 5
    done = set(reads)
    reads.clear()
    second = scan_dataset(rsna)
    assert not second.cancelled
    assert len(reads) == N + 1 - 5 and not done & set(reads)  # only the headers not read before
    assert second.summary()["headers_from_cache"] == 5 and second.summary()["headers_read"] == N + 1 - 5
    assert _records(second) == _records(whole)
    reads.clear()
    third = scan_dataset(rsna)
    assert reads == [] and third.headers_cached == N + 1 and _records(third) == _records(whole)


def test_ctrl_c_keeps_what_was_read(rsna, reads):
    def interrupt(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        scan_dataset(rsna, progress=interrupt)
    reads.clear()
    again = scan_dataset(rsna)
    assert len(reads) == N + 1 - 4 and again.headers_cached == 4


def test_a_changed_file_is_read_again(rsna, reads):
    scan_dataset(rsna)
    changed = next((rsna / "train_images" / "10001").glob("*.dcm"))
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    reads.clear()
    scan_dataset(rsna)
    assert reads == [changed.name]


def test_a_second_process_reads_the_cache_but_does_not_write_it(rsna, reads):
    options = {"include_non_mammograms": True, "include_for_processing": False, "frame": None}
    cache = ScanCache(rsna.resolve(), options)
    cache.close()
    with acquire(cache.path.with_suffix(".lock")):  # another scan of the same folder holds it
        scan = scan_dataset(rsna)
        assert any("scan cache in use" in note for note in scan.notes)
    assert not cache.path.exists()
    reads.clear()
    scan_dataset(rsna)
    assert len(reads) == N + 1  # nothing was cached by the scan that did not hold the lock


def test_the_cli_scan_reports_the_cache_and_can_do_without_it(rsna, capsys):
    from arfl_studio.cli import main as cli_main

    assert cli_main(["scan", str(rsna)]) == 0
    assert f"0 headers from the scan cache, {N + 1} read" in capsys.readouterr().out
    assert cli_main(["scan", str(rsna)]) == 0
    assert f"{N + 1} headers from the scan cache, 0 read" in capsys.readouterr().out
    assert cli_main(["scan", str(rsna), "--no-scan-cache"]) == 0
    assert f"0 headers from the scan cache, {N + 1} read" in capsys.readouterr().out
