"""Header reads go to worker processes only when enough of them are left to read: the GUI scans
with workers, and a small folder must not pay for starting the processes."""

from arfl_studio.data import generate_demo_dataset, scan_dataset
from arfl_studio.data.datasets import layouts


def test_workers_are_used_from_parallel_from_headers_on(tmp_path, monkeypatch):
    demo = generate_demo_dataset(tmp_path / "demo", patients=2, size=(40, 32))
    used = []
    real = layouts.read_headers

    def spy(paths, **read):
        used.append((len(paths), read["workers"]))
        return real(paths, **{**read, "workers": 1})

    monkeypatch.setattr(layouts, "read_headers", spy)
    few = scan_dataset(demo, workers=3, parallel_from=10_000, scan_cache=False)
    many = scan_dataset(demo, workers=3, parallel_from=2, scan_cache=False)
    assert used[0][1] == 1 and used[1] == (used[0][0], 3) and used[0][0] >= 2
    assert [r.rel_path for r in few.images] == [r.rel_path for r in many.images] and few.images


def test_the_gui_scan_asks_for_workers_on_large_folders(monkeypatch):
    import threading

    import arfl_studio.data as data_layer
    import pytest
    from arfl_studio.gui.panes import dataset_tasks

    asked = {}

    def fake_scan(*args, **kwargs):
        asked.update(kwargs)
        raise LookupError("stop here")

    monkeypatch.setattr(data_layer, "scan_dataset", fake_scan)
    with pytest.raises(LookupError):
        dataset_tasks.scan_task("somewhere", None, "auto", 5)(lambda *a, **k: None, threading.Event())
    assert asked["workers"] == dataset_tasks.SCAN_WORKERS >= 1
    assert asked["parallel_from"] == dataset_tasks.PARALLEL_FROM > 0
