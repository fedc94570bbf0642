"""The scripted session behind ``arfl-studio --screenshot DIR``.

Opens the window (offscreen) on the demo data, trains a tiny comparison to the
end, attacks it, opens a flipped (or any) case in the viewer with a saliency
overlay, and saves one PNG per pane. Also a smoke test of the whole app.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QPointF

PANES = ("dataset", "training", "attack", "viewer")
TINY = dict(
    backbone="small_cnn",
    image_size=48,
    epochs=3,
    batch_size=16,
    lr=2e-3,
    folds=2,
    methods=("A", "E", "F"),
    eps=0.01,
    steps=3,
    eval_eps=0.001,
)


class Timeout(RuntimeError):
    pass


def wait_until(predicate, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout_s:.0f} s waiting for {what}")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def settle(seconds: float = 0.4) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        time.sleep(0.01)


def drive(window, demo_dir=None, demo_patients=None, demo_size=None, training=None, runs_root=None, timeout_s: float = 900) -> dict:
    """Demo data -> training -> attack -> overlay, waiting for each step. Returns what happened."""
    training = dict(TINY, **(training or {}))
    task = window.start_demo(demo_dir, demo_patients, demo_size)
    wait_until(lambda: task.outcome is not None, timeout_s, "the demo dataset")
    if task.outcome == "failed":
        raise RuntimeError(f"demo dataset: {task.error}")
    wait_until(lambda: window.dataset_pane.scan is not None, timeout_s, "the dataset scan")
    scan_task = window.dataset_pane.task
    wait_until(lambda: scan_task.outcome is not None, timeout_s, "thumbnails")

    pane = window.training_pane
    pane.form.set_values(**training)
    run = pane.start(Path(runs_root) / "screenshot-run" if runs_root else None)
    if run is None:
        raise RuntimeError("training did not start")
    wait_until(lambda: run.outcome is not None, timeout_s, "the training run")
    if run.outcome == "failed":
        raise RuntimeError(f"training failed: {run.error}")

    attack = window.attack_pane
    attack.method_box.setCurrentText("F")  # the viewer then pairs F with E, as in the paper's Figure 5
    attack.eps_edit.setText("0.001, 0.01, 0.03")
    attack.steps_spin.setValue(5)
    handle = attack.run_attack()
    if handle is None:
        raise RuntimeError("the attack did not start")
    wait_until(lambda: handle.outcome is not None, timeout_s, "the attack")
    if handle.outcome == "failed":
        raise RuntimeError(f"attack failed: {handle.error}")

    viewer = window.viewer_pane
    if attack.flip_model.rows:
        request = attack.open_flipped(0)
    else:  # nothing flipped: open the first held-out case anyway
        request = dict(attack.source, record=attack.records[0], eps=0.03, attack="pgd")
        window._open_case(request)
    viewer.overlay_box.setCurrentText("saliency")
    wait_until(lambda: viewer.task is not None and viewer.task.outcome is not None, timeout_s, "the viewer overlay")
    if viewer.task.outcome == "failed":
        raise RuntimeError(f"viewer failed: {viewer.task.error}")
    for view in viewer.current_views():  # the readout as if the cursor rested on the overlay's peak
        if view.overlay_visible():
            i, j = divmod(int(view.heat.argmax()), view.heat.shape[1])
            view.readout.setText(view.readout_text(view.overlay.mapToView(QPointF(j + 0.5, i + 0.5))))
    return {"run_dir": pane.run_dir, "request": request}


def show_crop_box(pane, row: int = 1, timeout_s: float = 120) -> None:
    """Select an image in the Dataset pane and wait for its crop box and the thumbnails in view."""
    pane.select_row(row)
    wait_until(lambda: pane.crop_preview.native_box() is not None, timeout_s, "the crop preview")
    wait_until(lambda: not pane.busy(), timeout_s, "the dataset pane's thumbnails")


def take_screenshots(out_dir: str | Path, size=(1440, 900), **drive_kwargs) -> int:
    from arfl_studio.gui.main_window import MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    window = MainWindow(runs_root=drive_kwargs.pop("runs_root", None) or out / "runs")
    window.ask_on_close = lambda: True
    window.resize(*size)
    window.show()
    try:
        drive(window, runs_root=out / "runs", **drive_kwargs)
        window.attack_pane.flip_table.selectRow(0)
        show_crop_box(window.dataset_pane)
        for index, name in enumerate(PANES):
            window.tabs.setCurrentIndex(index)
            settle(0.6)
            path = out / f"{name}.png"
            if not window.grab().save(str(path)):
                raise OSError(f"could not write {path}")
            print(f"wrote {path}")
    except Exception as exc:  # noqa: BLE001 - the exit code and message are the report
        print(f"screenshot run failed: {exc}")
        window.close()
        return 1
    window.close()
    return 0
