"""Ctrl-C for headless commands: a cancel event the long loops poll, and one line saying what was kept.

Python's default turns Ctrl-C into a ``KeyboardInterrupt`` raised wherever the main thread happens
to be, which may be inside a C extension (the OpenJPEG encoder crashes with SIGSEGV when its Python
callback raises). A command that polls a cancel event therefore declares it
(:func:`declare_cancellable`); while it runs, :func:`ctrl_c_cancels` makes the first Ctrl-C only set
:data:`CANCEL`, and the command, at its next step, stops and raises :class:`Interrupted`. A second
Ctrl-C raises ``KeyboardInterrupt`` as usual (the way out of a loop that does not answer). Long
commands note their progress as they go (:func:`note`); ``cli.run_command`` prints :func:`summary`
and exits with status 130, without a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_DEFAULT_KEPT = "every file written before it is complete (files are written whole or not at all)"
_state: dict[str, str | None] = {"done": None, "kept": None}

CANCEL = threading.Event()
"""Set by the first Ctrl-C while a cancellable command runs; the command passes it to the core as ``cancel``."""


class Interrupted(Exception):
    """A command stopped early because :data:`CANCEL` was set (the core returned or raised its own 'cancelled')."""


def declare_cancellable(parser) -> None:
    """Mark a command whose long loops poll :data:`CANCEL` (a Ctrl-C then sets it instead of raising)."""
    parser.set_defaults(cancellable=True)


def stop_if_cancelled() -> None:
    """Raise :class:`Interrupted` when Ctrl-C has set :data:`CANCEL` (called between a command's steps)."""
    if CANCEL.is_set():
        raise Interrupted


@contextlib.contextmanager
def ctrl_c_cancels() -> Iterator[threading.Event]:
    """While the block runs: the first SIGINT sets :data:`CANCEL`, a second raises ``KeyboardInterrupt``.

    The previous handler is restored on exit. Off the main thread (where signal handlers cannot be
    installed) Ctrl-C keeps Python's default.
    """
    if threading.current_thread() is not threading.main_thread():
        yield CANCEL
        return

    def on_sigint(signum, frame) -> None:
        if CANCEL.is_set():
            raise KeyboardInterrupt  # the second Ctrl-C: the user wants out now
        CANCEL.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield CANCEL
    finally:
        signal.signal(signal.SIGINT, previous)


def reset() -> None:
    """Before a command: no cancel requested, no progress noted."""
    CANCEL.clear()
    _state.update(done=None, kept=None)


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
