"""kill -9 leftovers: temporary files and partial demo folders of dead processes."""

from __future__ import annotations

import os
import subprocess
import sys

from arfl_studio.atomic import remove_stale_temp_files, write_bytes


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _age(path, seconds=3600):
    old = path.stat().st_mtime - seconds
    os.utime(path, (old, old))


def test_temp_names_carry_the_writer_pid_and_only_dead_writers_files_go(tmp_path):
    target = tmp_path / "sub" / "x.npy"
    write_bytes(target, b"data")
    assert target.read_bytes() == b"data" and [p.name for p in target.parent.iterdir()] == ["x.npy"]
    pid = dead_pid()
    dead = tmp_path / "sub" / f".x.npy.p{pid}.ab12cd_3.tmp"
    live = tmp_path / "sub" / f".x.npy.p{os.getpid()}.ab12cd_4.tmp"
    fresh_dead = tmp_path / f".y.json.p{pid}.zz12cd_3.tmp"
    users = [tmp_path / "sub" / "notes.tmp", tmp_path / "sub" / ".draft.tmp", tmp_path / "sub" / f".x.p{pid}.tmp"]
    for path in (dead, live, fresh_dead, *users):
        path.write_bytes(b"half")
    for path in (dead, live, *users):
        _age(path)
    assert remove_stale_temp_files(tmp_path) == []  # not recursive: fresh_dead is too young
    assert remove_stale_temp_files(tmp_path, recursive=True) == [dead]
    assert not dead.exists() and live.exists() and fresh_dead.exists()
    assert all(p.exists() for p in users)
    assert remove_stale_temp_files(tmp_path, recursive=True, min_age_s=0) == [fresh_dead]
