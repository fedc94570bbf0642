"""File → Evaluate run on another dataset…: the core's external validation in a worker, its table shown."""

from __future__ import annotations

from arfl_studio.gui.external_evaluation import evaluate_on_another_dataset

from .conftest import menu_titled, wait_task


def test_evaluate_menu_scores_every_model_and_shows_the_table(qtbot, window, trained_run, demo_dir):
    names = [a.text() for a in menu_titled(window, "File").actions()]
    assert "Evaluate run on another dataset…" in names
    handle = evaluate_on_another_dataset(window, str(trained_run), str(demo_dir))
    wait_task(qtbot, handle)
    assert handle.outcome == "done", handle.error
    assert window.external_dialog.isVisible()
    assert window.external_dialog.windowTitle().endswith(f"External validation of {trained_run.name}")
    body = handle.result
    for row in ("A, fold 1", "A, fold 2", "B, fold 1", "B, ensemble of 2 folds"):
        assert any(row.lower() in line.lower() for line in body.splitlines()), (row, body)
    assert "images of" in body.splitlines()[0]
