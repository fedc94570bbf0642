"""JSON written by the program is always valid JSON (RFC 8259): no NaN or Infinity (issue 11.4)."""

from __future__ import annotations

import json

import numpy as np

from arfl_studio import atomic


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_are_written_as_null(tmp_path):
    path = tmp_path / "r.json"
    atomic.write_json(
        path,
        {
            "auc": float("nan"),
            "eps": float("inf"),
            "low": -float("inf"),
            "ok": 0.5,
            "np": np.float32("nan"),
            "array": np.array([1.0, np.inf]),
            "nested": [{"x": float("nan")}],
            "path": tmp_path,
            "n": np.int64(3),
        },
    )
    data = _strict(path.read_text())
    assert data == {
        "auc": None,
        "eps": None,
        "low": None,
        "ok": 0.5,
        "np": None,
        "array": [1.0, None],
        "nested": [{"x": None}],
        "path": str(tmp_path),
        "n": 3,
    }


def test_jsonl_lines_are_valid_json_too(tmp_path):
    path = tmp_path / "metrics.jsonl"
    atomic.append_jsonl(path, {"epoch": 1, "loss": float("nan")})
    atomic.append_jsonl(path, {"epoch": 2, "loss": 0.25})
    assert [_strict(line) for line in path.read_text().splitlines()] == [{"epoch": 1, "loss": None}, {"epoch": 2, "loss": 0.25}]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    """Issue 26 item 19: without the folder's fsync a power cut can lose a file reported written."""
    import os
    import stat

    from arfl_studio import atomic

    synced = []
    real_fsync, real_replace = os.fsync, os.replace
    order = []

    def fsync(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        order.append("dir-fsync" if synced[-1] else "file-fsync")
        return real_fsync(fd)

    def replace(src, dst):
        order.append("rename")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_json(tmp_path / "r.json", {"x": 1})
    assert order == ["file-fsync", "rename", "dir-fsync"]
