"""The decoder processes: a compressed file decodes there to exactly the in-process pixels, its
refusal keeps its reason and category, a dead decoder process costs one file at most, and shutdown
leaves no process and no pixel file behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from helpers_data import phantom, write_dicom

from arfl_studio.data import MammogramReadError, read_mammogram
from arfl_studio.data.dicom import decode_pool

JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


@pytest.fixture(scope="module")
def pool():
    pool = decode_pool.DecodePool(workers=1)
    yield pool
    pool.shutdown()


@pytest.fixture
def installed(pool):
    decode_pool.install(pool)
    yield pool
    decode_pool.install(None)


def test_a_compressed_file_decodes_in_the_pool_to_the_in_process_result(tmp_path, installed):
    path = write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS, laterality="R", view="MLO")
    here = read_mammogram(path)
    there = decode_pool.read_mammogram_isolated(path)
    assert installed.started
    np.testing.assert_array_equal(there.pixels, here.pixels)
    assert there.pixels.dtype == np.float32 and there.pixels.flags.writeable
    assert (there.laterality, there.view, there.rows, there.transfer_syntax) == ("R", "MLO", 96, JPEG2000_LOSSLESS)
    assert os.listdir(installed._folder) == []  # the pixel file is gone once read


def test_the_pool_keeps_what_lies_outside_the_window_when_asked(tmp_path, installed):
    """The viewer's read (clip=False, issue 25 item 12) goes through the pool with its display scale."""

    def narrow(ds):
        ds.WindowCenter, ds.WindowWidth = 2048, 1001

    path = write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS, edit=narrow)
    here = read_mammogram(path, clip=False)
    there = decode_pool.read_mammogram_isolated(path, clip=False)
    np.testing.assert_array_equal(there.pixels, here.pixels)
    assert there.pixels.min() < 0 < 1 < there.pixels.max()
    assert there.display_scale == here.display_scale and there.display_scale.span == 1000


def test_an_uncompressed_file_is_read_in_process(tmp_path):
    pool = decode_pool.DecodePool(workers=1)
    decode_pool.install(pool)
    try:
        mammogram = decode_pool.read_mammogram_isolated(write_dicom(tmp_path / "plain.dcm"))
    finally:
        decode_pool.install(None)
    assert mammogram.pixels.shape == phantom().shape and not pool.started


def test_a_refused_file_keeps_its_reason_and_category(tmp_path, pool):
    path = write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS)
    data = bytearray(path.read_bytes())
    data[-200:] = b"\0" * 200  # the end of the codestream is lost
    path.write_bytes(bytes(data))
    with pytest.raises(MammogramReadError) as here:
        read_mammogram(path)
    with pytest.raises(MammogramReadError) as there:
        pool.read(path)
    assert str(there.value) == str(here.value) and there.value.category == here.value.category


def test_a_dead_decoder_process_costs_one_file_at_most(tmp_path, pool):
    path = write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS)
    expected = read_mammogram(path).pixels
    pool.read(path)
    for process in list(pool._executor._processes.values()):
        os.kill(process.pid, signal.SIGKILL)  # a decoder segfault, an out-of-memory kill
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(pool.read(path).pixels)
            break
        except MammogramReadError as err:  # the file in flight when the process died
            outcomes.append(err)
    np.testing.assert_array_equal(outcomes[-1], expected)


def test_a_crashed_pool_s_folder_and_its_partial_pixel_file_are_removed(tmp_path):
    pool = decode_pool.DecodePool(workers=1)
    path = write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS)
    try:
        pool.read(path)
        old = pool._folder
        (Path(old) / "tmpcrashed.f32").write_bytes(b"\1" * 4096)  # what a decode killed mid-write leaves
        for process in list(pool._executor._processes.values()):
            os.kill(process.pid, signal.SIGKILL)
        for _ in range(2):  # the read that meets the dead pool fails or starts a fresh one
            try:
                pool.read(path)
                break
            except MammogramReadError:
                pass
        assert not os.path.exists(old), "the crashed pool's folder (patient pixels) was left behind"
        assert pool._folder != old and os.listdir(pool._folder) == []
    finally:
        pool.shutdown()


def test_shutdown_stops_the_processes_and_removes_the_folder(tmp_path):
    pool = decode_pool.DecodePool(workers=1)
    pool.read(write_dicom(tmp_path / "j2k.dcm", phantom(96, 80), syntax=JPEG2000_LOSSLESS))
    processes, folder = list(pool._executor._processes.values()), pool._folder
    pool.shutdown()
    assert not pool.started and not os.path.exists(folder)
    assert all(not p.is_alive() for p in processes)
