"""Help: the user guide, the keyboard shortcuts, and the About box.

The user guide is the documentation site's pages (``docs/*.md``; a wheel and the frozen app
carry them, see :func:`arfl_studio.bundled.guide_pages`). Where they are missing, Help falls
back to the README's sections, read from the source tree or else from the installed
package's metadata (the wheel carries it as its long description).
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout, QWidget

from arfl_studio import __version__
from arfl_studio.bundled import guide_pages

APP_NAME = "ARFL Studio"
CITATION = (
    "Degan Hao, Dooman Arefan, Margarita Zuley, Wendie Berg, Shandong Wu. "
    "Adversarially Robust Feature Learning for Breast Cancer Diagnosis. 2024 (under review)."
)

# (action, key sequence as shown, what it does); main_window binds the same sequences.
SHORTCUTS = (
    ("open_folder", "Ctrl+O", "Open a DICOM folder"),
    ("open_run", "Ctrl+Shift+O", "Open a past run (curves, table, attacks)"),
    ("start_training", "Ctrl+Return", "Start training with the current settings"),
    ("stop_training", "Ctrl+.", "Stop training (it can be resumed)"),
    ("resume_training", "Ctrl+Shift+R", "Resume the stopped run"),
    ("queue_run", "Ctrl+Shift+Q", "Add the current settings to the run queue"),
    ("next_case", "Ctrl+]", "Next case (image list or flipped cases)"),
    ("previous_case", "Ctrl+[", "Previous case"),
    ("toggle_overlay", "Ctrl+T", "Viewer: overlay on / off"),
    ("toggle_adversarial", "Ctrl+D", "Viewer: adversarial / clean image"),
    ("pane_1", "Alt+1", "Dataset pane"),
    ("pane_2", "Alt+2", "Training pane"),
    ("pane_3", "Alt+3", "Attack pane"),
    ("pane_4", "Alt+4", "Viewer pane"),
    ("help", "F1", "Help: the user guide"),
    ("quit", "Ctrl+Q", "Quit"),
)


def shortcut(action: str) -> str:
    return next(keys for name, keys, _ in SHORTCUTS if name == action)


def readme_text() -> str:
    here = Path(__file__).resolve().parents[2] / "README.md"
    try:
        return here.read_text(encoding="utf-8")
    except OSError:
        pass
    try:
        from importlib.metadata import metadata

        meta = metadata("arfl-studio")
        return meta.get_payload() or meta.get("Description") or ""
    except Exception:  # noqa: BLE001 - not installed: say so below
        return ""


def readme_sections(text: str | None = None) -> list[tuple[str, str]]:
    """[(title, markdown)] for each ``## `` section of the README (headings inside code blocks skipped)."""
    text = readme_text() if text is None else text
    sections: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        match = None if fenced else re.match(r"^##\s+(.*\S)\s*$", line)
        if match:
            sections.append((match.group(1), [line]))
        elif sections:
            sections[-1][1].append(line)
    return [(title, "\n".join(lines)) for title, lines in sections]


def guide_sections() -> list[tuple[str, str]]:
    """[(title, markdown)]: one entry per page of the user guide, else per README section."""
    return guide_pages() or readme_sections()


def shortcuts_markdown() -> str:
    rows = "\n".join(f"| {keys} | {what} |" for _name, keys, what in SHORTCUTS)
    return "## Keyboard shortcuts\n\n| Keys | Action |\n|---|---|\n" + rows + "\n"


def about_text() -> str:
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        "<p>Train breast-cancer diagnosis models that stay accurate under adversarial attack, with the "
        "ARFL method and the baselines it is compared with; attack them, and see what they look at.</p>"
        f"<p><b>Please cite the method's paper:</b><br>{CITATION}</p>"
    )


class HelpDialog(QDialog):
    """A page of the user guide (or the shortcuts) as formatted text; non-modal."""

    def __init__(self, title: str, markdown: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME} — {title}")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setMarkdown(markdown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(760, 560)


def show_about(parent: QWidget | None) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.Information, f"About {APP_NAME}", about_text(), QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("aboutBox")
    if parent is not None and not parent.windowIcon().isNull():
        box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    box.open()
    return box
