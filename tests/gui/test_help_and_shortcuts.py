"""Help: tooltips on every setting and method row, the Help menu (README sections, shortcuts,
About), the title bar, and keyboard shortcuts wired to the panes."""

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMenu

from arfl_studio import __version__
from arfl_studio.gui import help as app_help


def _menu(window, title):
    # by title among the window's menus: QAction.menu() hands back a wrapper that PySide6 6.6 deletes
    return next(m for m in window.menuBar().findChildren(QMenu) if m.title().replace("&", "") == title)


def test_every_setting_and_method_row_has_a_tooltip(window):
    form = window.training_pane.form
    widgets = form.setting_widgets()
    assert {"r", "lambda", "variant", "eps", "steps", "eval_eps", "folds"} <= set(widgets)
    missing = [name for name, w in widgets.items() if len(w.toolTip().strip()) < 20]
    assert not missing, f"settings without a tooltip: {missing}"
    assert "clean share" in widgets["r"].toolTip() and "L_robust" in widgets["lambda"].toolTip()
    assert "ε1" in widgets["eps"].toolTip() and "ε2" in widgets["eval_eps"].toolTip()
    # each of the paper's rows says what it is
    assert "r = 0.5" in widgets["method F"].toolTip() and "ARFL" in widgets["method F"].toolTip()
    assert "TRADES" in widgets["method H"].toolTip()


def test_title_and_about_name_the_app_version_and_paper(qtbot, window):
    assert window.windowTitle() == f"ARFL Studio {__version__}"
    window.named_actions["about"].trigger()
    box = window.findChild(type(app_help.show_about(None)), "aboutBox")
    assert box is not None
    text = box.text()
    assert "ARFL Studio" in text and __version__ in text
    assert "Adversarially Robust Feature Learning for Breast Cancer Diagnosis" in text
    box.close()


def test_help_menu_has_readme_sections_and_shortcuts(qtbot, window):
    sections = [a.text() for a in window.guide_menu.actions()]
    assert "The desktop app" in sections and "Running experiments" in sections
    help_menu = _menu(window, "Help")
    texts = [a.text() for a in help_menu.actions()]
    assert "Keyboard shortcuts" in texts and "About ARFL Studio" in texts
    next(a for a in help_menu.actions() if a.text() == "Keyboard shortcuts").trigger()
    dialog = window.help_dialogs[-1]
    shown = dialog.browser.toPlainText()
    for _name, keys, what in app_help.SHORTCUTS:
        assert what in shown
    dialog.close()
    next(a for a in window.guide_menu.actions() if a.text() == "The desktop app").trigger()
    assert "Dataset" in window.help_dialogs[-1].browser.toPlainText()
    window.help_dialogs[-1].close()


def test_shortcuts_are_bound_to_the_listed_keys(window):
    for name, keys, _what in app_help.SHORTCUTS:
        action = window.named_actions[name]
        assert action.shortcut() == QKeySequence(keys), name
    bound = [QKeySequence(k).toString() for _n, k, _w in app_help.SHORTCUTS]
    assert len(bound) == len(set(bound)), "two actions share a shortcut"


def test_start_stop_shortcuts_drive_the_training_pane(qtbot, window, demo_dir, monkeypatch):
    calls = []
    monkeypatch.setattr(window.training_pane, "start", lambda *a, **k: calls.append("start"))
    monkeypatch.setattr(window.training_pane, "stop", lambda *a, **k: calls.append("stop"))
    window.tabs.setCurrentWidget(window.dataset_pane)
    window.named_actions["start_training"].trigger()
    assert window.tabs.currentWidget() is window.training_pane
    window.named_actions["stop_training"].trigger()
    assert calls == ["start", "stop"]


def test_case_and_viewer_toggles(qtbot, window, demo_dir):
    pane = window.dataset_pane
    with qtbot.waitSignal(pane.scanned, timeout=60_000):
        pane.load(demo_dir)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)
    pane.select_row(0)
    assert window.step_case(+1) == 1 and pane.current_row() == 1
    assert window.step_case(+1) == 2
    assert window.step_case(-1) == 1 and pane.current_row() == 1
    assert window.step_case(-5) == 0  # stays in the list
    viewer = window.viewer_pane
    viewer.overlay_box.setCurrentText("saliency")
    assert window.toggle_overlay() == "none"
    assert window.toggle_overlay() == "saliency"
    before = viewer.adversarial_box.isChecked()
    window.named_actions["toggle_adversarial"].trigger()
    assert viewer.adversarial_box.isChecked() != before
    # in the viewer, the next case opens there
    window.tabs.setCurrentWidget(viewer)
    window.named_actions["next_case"].trigger()
    assert pane.current_row() == 1 and window.tabs.currentWidget() is viewer
    qtbot.waitUntil(lambda: viewer.task is None or not viewer.task.is_running(), timeout=60_000)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)
