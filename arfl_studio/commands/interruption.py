"""What a command had done when Ctrl-C stopped it, for the one line ``cli.main`` prints.

Long commands note their progress as they go (:func:`note`); on Ctrl-C ``cli.main`` prints
:func:`summary` and exits with status 130, without a traceback.
"""

from __future__ import annotations

_DEFAULT_KEPT = "every file written before it is complete (files are written whole or not at all)"
_state: dict[str, str | None] = {"done": None, "kept": None}


def note(done: str | None = None, kept: str | None = None) -> None:
    """Record what is finished so far (``done``) and what stays on disk if stopped now (``kept``)."""
    if done is not None:
        _state["done"] = done
    if kept is not None:
        _state["kept"] = kept


def progress_note(what: str, kept: str | None = None):
    """A ``progress(done, total)`` callback that keeps :func:`note` current: "N of M WHAT"."""
    def progress(done: int, total: int) -> None:
        note(f"{done} of {total} {what}", kept)

    return progress


def summary(command: str) -> str:
    """One line: the command was interrupted, what it had completed, what was kept."""
    done = _state["done"] or "stopped before any step finished"
    return f"{command} interrupted: {done}; {_state['kept'] or _DEFAULT_KEPT}"
