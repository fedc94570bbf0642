"""GUI test fixtures: offscreen Qt, private QSettings, tiny demo data and a tiny trained run,
and the rule that no test may leave a worker QThread running."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

TINY_TRAINING = dict(
    backbone="small_cnn", image_size=32, epochs=1, batch_size=16, lr=2e-3, folds=2, methods=("A", "B"), eps=0.01, steps=2, eval_eps=0.001
)


@pytest.fixture(scope="session", autouse=True)
def _qt_app(tmp_path_factory):
    from PySide6.QtCore import QSettings

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path_factory.mktemp("qsettings")))
    from arfl_studio.gui.app import make_app

    return make_app([])


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail the test if a worker thread it started is still running when it ends."""
    yield
    from arfl_studio.gui.workers import cancel_all_and_wait, running_threads

    running = [h.name for h in running_threads()]
    if running:
        cancel_all_and_wait(30000)  # do not let the leak spill into the next test
        pytest.fail(f"QThread(s) still running at the end of the test: {running}")


@pytest.fixture(autouse=True)
def _no_stale_dialog():
    from arfl_studio.gui.dialogs import clear_last_error

    clear_last_error()
    yield
    clear_last_error()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from arfl_studio.data import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=8, size=(64, 52), seed=0)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, demo_dir):
    """A finished tiny run (methods A and B, 2 folds, 1 epoch), trained headless."""
    from arfl_studio.experiments import run_experiment
    from arfl_studio.training import AttackSettings, paper_method

    attack = AttackSettings(eps=0.01, steps=2)
    out = tmp_path_factory.mktemp("runs") / "tiny"
    config = {
        "data": {"root": str(demo_dir)},
        "preprocess": {"size": [32, 32]},
        "model": {"backbone": "small_cnn", "width": 8},
        "training": {"epochs": 1, "batch_size": 16, "lr": 2e-3, "device": "cpu", "workers": 0},
        "cv": {"folds": 2},
        "methods": [paper_method(k, attack=attack).to_dict() for k in ("A", "B")],
        "evaluation": {"eps": 0.001, "steps": 2},
    }
    result = run_experiment(config, out)
    assert result.status == "finished", result.message
    return out


@pytest.fixture
def window(qtbot, tmp_path):
    from arfl_studio.gui.main_window import MainWindow

    win = MainWindow(runs_root=tmp_path / "runs", devices=["cpu"])
    win.ask_on_close = lambda: True
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()


def wait_task(qtbot, handle, timeout=120_000):
    qtbot.waitUntil(lambda: handle.outcome is not None, timeout=timeout)
    qtbot.waitUntil(lambda: not handle.is_running(), timeout=timeout)
    return handle


def report_with_one_flip(case: dict) -> dict:
    """A minimal saved attack report: one ε at which ``case`` flipped."""
    roc = {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0]}
    flipped = dict(case, label=1, clean_prob=0.7, adversarial_prob=0.3, attack_settings={"attack": "fgsm", "eps": 0.02, "steps": 1})
    return {
        "attack": "fgsm",
        "settings": {},
        "threshold_logit": 0.0,
        "n": 4,
        "n_positive": 2,
        "clean": {"auc": 0.75, "roc": roc},
        "results": [{"eps": 0.02, "auc": 0.5, "roc": roc, "flipped": [flipped], "flipped_count": 1}],
        "auc_curve": {"eps": [0.02], "adversarial_auc": [0.5]},
    }


def menu_titled(window, title: str):
    """The window's menu (or submenu) called ``title``, found among its QMenus: the wrapper that
    QAction.menu() hands back is already deleted under PySide6 6.6 (the lowest allowed)."""
    from PySide6.QtWidgets import QMenu

    return next(m for m in window.menuBar().findChildren(QMenu) if m.title().replace("&", "") == title)
