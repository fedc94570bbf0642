"""`arfl-studio PATH`, a file manager's "Open with" and a drop open what the user points at: a run
folder as File → Open run, a DICOM folder in the Dataset pane, a DICOM file in the Viewer."""

import pytest

from arfl_studio import cli

from .conftest import wait_task


def test_command_line_positionals_are_paths_unless_a_subcommand_comes_first():
    parser = cli.build_parser()
    assert cli.split_paths(["/data/a.dcm", "/data/b.dcm"], parser) == (["/data/a.dcm", "/data/b.dcm"], [])
    assert cli.split_paths(["-v", "/data/cmmd"], parser) == (["/data/cmmd"], ["-v"])
    assert cli.split_paths(["--screenshot", "out"], parser) == ([], ["--screenshot", "out"])
    assert cli.split_paths(["scan", "/data/cmmd"], parser) == ([], ["scan", "/data/cmmd"])


def test_arfl_studio_path_opens_the_app_on_that_path(monkeypatch, tmp_path, capsys):
    import arfl_studio.gui.app as app

    seen = {}
    monkeypatch.setattr(app, "run_app", lambda startup_probe=False, paths=None: seen.setdefault("paths", paths) and 0)
    monkeypatch.setattr(cli, "_has_screen", lambda: True)
    assert cli.main([str(tmp_path)]) == 0 and seen["paths"] == [str(tmp_path)]
    with pytest.raises(SystemExit):
        cli.main([str(tmp_path / "missing.dcm")])
    assert "no such file or folder" in capsys.readouterr().err


def test_a_dicom_file_opens_in_the_viewer(qtbot, window, demo_dir):
    from arfl_studio.data import scan_dataset

    record = next(r for r in scan_dataset(demo_dir).images if (r.laterality, r.view) == ("L", "MLO"))
    viewer = window.viewer_pane
    with qtbot.waitSignal(viewer.views_ready, timeout=60_000):
        window.open_paths([str(record.path)])
        assert window.tabs.currentWidget() is viewer
    wait_task(qtbot, viewer.task)
    assert viewer.hanging["LMLO"].gray is not None  # the file itself
    assert len(viewer.views) > 1  # and the patient's other views from its folder
    assert "label unknown" in viewer.prediction.text()  # no dataset, so no diagnosis is made up


def test_a_run_folder_opens_as_open_run_and_a_dicom_folder_in_the_dataset_pane(qtbot, window, trained_run, demo_dir):
    window.open_paths([str(trained_run)])
    assert window.training_pane.run_dir == trained_run and window.tabs.currentWidget() is window.training_pane
    pane = window.dataset_pane
    with qtbot.waitSignal(pane.scanned, timeout=60_000):
        window.open_paths([str(demo_dir)])
    wait_task(qtbot, pane.task)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)
    assert window.tabs.currentWidget() is pane and pane.scan is not None
