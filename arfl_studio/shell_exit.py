"""How a command-line process ends, Ctrl-C included, once its command has unwound.

Imported before anything registers an exit hook (``cli`` imports it first): exit hooks run last
registered first, so :func:`_ignore_ctrl_c_in_teardown` runs after every other one.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys

_finished: list[int] = []


def exit_now(status: int) -> None:
    """End the process without the interpreter's teardown (over a second once torch is loaded).

    Multiprocessing's exit-time finalizers still run (what its own exit hook runs first): they
    unlink the pools' semaphores, which its resource tracker would otherwise report as leaked, on
    stderr, after the command's one line.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        util._run_finalizers(0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def finished(status: int) -> None:
    """The command finished with ``status`` and everything is written. A Ctrl-C from now on ends
    the process with that status at once: not killed by the signal, no ``KeyboardInterrupt``
    raised inside an exit hook, no traceback."""
    _finished.append(status)
    signal.signal(signal.SIGINT, lambda signum, frame: exit_now(status))


@atexit.register
def _ignore_ctrl_c_in_teardown() -> None:
    # After the exit hooks the interpreter puts SIGINT back to its default (death by signal) and
    # then spends its longest stretch destroying modules; ignoring it keeps the finished status.
    if _finished:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
