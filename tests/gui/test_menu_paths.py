"""Every "Menu → item" a message of the app names exists in the window's menus (issue 25 item 15)."""

from __future__ import annotations

import re
from pathlib import Path

import arfl_studio.gui as gui_package
from arfl_studio.gui.messages import gui_message

MENUS = ("File", "Run", "View", "Help")
PATH = re.compile(r"\b(" + "|".join(MENUS) + r") → ([^\"“”()\n;,]+?…?)(?=[\"”)\n;,]| and | or |$)")


def _menu_items(window) -> dict[str, list[str]]:
    def walk(menu, prefix=""):
        for action in menu.actions():
            if action.menu() is not None:
                yield from walk(action.menu(), prefix + action.text() + " → ")
            elif action.text():
                yield prefix + action.text()

    return {a.text().replace("&", ""): list(walk(a.menu())) for a in window.menuBar().actions()}


def named_paths(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2).strip()) for m in PATH.finditer(text)]


def test_every_menu_path_in_a_message_exists(window):
    items = _menu_items(window)
    sources = "\n".join(
        re.sub(r"\s*\n\s*(?:#\s*)?", " ", p.read_text(encoding="utf-8"))  # lines wrapped
        for p in Path(gui_package.__file__).parent.rglob("*.py")
    )
    core = " ".join(
        gui_message(m)
        for m in (
            "pass --labels FILE or --layout",
            "pass --labels FILE",
            "(--labels FILE)",
            "--json PATH",
            "re-run with that config to resume it",
        )
    )
    found = named_paths(sources + "\n" + core)
    assert ("File", "Open labels file…") in found  # the check sees the messages it is meant to
    missing = [f"{menu} → {item}" for menu, item in found if item not in items[menu] and item + "…" not in items[menu]]
    assert not missing, f"messages name menu items that do not exist: {missing}; menus: {items}"
