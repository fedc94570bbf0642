"""Core messages, told in GUI terms: the core speaks to the command line ("pass --labels
FILE"); inside the app the user needs the menu item or button that does the same."""

from __future__ import annotations

import re

# Longest first: "pass --labels FILE or --layout" before "--labels FILE" alone.
_GUI_ACTIONS = (
    (
        r"pass --labels FILE or --layout",
        "choose a labels file with File → Open labels file… or pick a layout in the Dataset pane's Layout box",
    ),
    (r"pass --labels FILE", "choose the labels file with File → Open labels file…"),
    (r"\(--labels FILE\)", "(choose it with File → Open labels file…)"),
    (r"--labels(?: FILE)?", "File → Open labels file…"),
    (r"--layout(?: \w+)?", "the Dataset pane's Layout box"),
    (r"--verify", "the Dataset pane's “Verify (decode every file)” option"),
    (r"--json(?: PATH)?", "an export in the File menu"),
    (r"re-run the same command to resume", "press Resume in the Training pane"),
    (r"re-run with that config to resume it", "open it with File → Open run… and press Resume"),
)


def gui_message(message: str) -> str:
    """``message`` with command-line flags replaced by the GUI actions that do the same."""
    for pattern, replacement in _GUI_ACTIONS:
        message = re.sub(pattern, replacement, message)
    # any flag left (an option the GUI does not name yet) is at least not shown as a flag
    return re.sub(r"(?<![\w-])--([a-z][a-z-]*)", lambda m: f"the “{m.group(1).replace('-', ' ')}” option", message)
