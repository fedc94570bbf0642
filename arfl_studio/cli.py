"""The ``arfl-studio`` command.

No subcommand opens the desktop app on the built-in demo dataset (or, where no
screen is available, runs the headless demo: the same data, a short training,
an attack). Subcommands run the same core functions headless; each one takes
``--json PATH`` and writes a machine-readable result there.
"""

from __future__ import annotations

from arfl_studio import shell_exit  # first: its exit hook must be registered before any other

import argparse
import contextlib
import logging
import multiprocessing
import os
import sys

from arfl_studio import __version__


def build_parser() -> argparse.ArgumentParser:
    from arfl_studio.commands import register_all

    parser = argparse.ArgumentParser(
        prog="arfl-studio",
        description="Adversarially robust feature learning (ARFL) for breast-cancer diagnosis. "
        "Without a subcommand the desktop app opens on the built-in demo data.",
    )
    parser.add_argument("--version", action="version", version=f"arfl-studio {__version__}")
    parser.add_argument(
        "--screenshot",
        metavar="DIR",
        help="open the app offscreen on the demo data, train, attack, overlay, save one PNG per pane into DIR and exit",
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run the headless demo even when a screen is available",
    )
    parser.add_argument(
        "--install-desktop-entry",
        action="store_true",
        help="add ARFL Studio to this user's application menu (launcher, icon, AppStream metainfo) and exit",
    )
    parser.add_argument("--startup-probe", action="store_true", help=argparse.SUPPRESS)  # benchmarks: time to main window
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_all(subparsers)
    return parser


def _has_screen() -> bool:
    if os.environ.get("QT_QPA_PLATFORM", "") not in ("", "xcb", "wayland"):
        return True  # offscreen/minimal/etc. chosen explicitly
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def split_paths(argv: list[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """``arfl-studio PATH ...`` (a file manager's "Open with"): the paths to open in the app, and the
    other arguments. Positionals are paths unless the first one names a subcommand."""
    commands = next((set(a.choices) for a in parser._actions if isinstance(a, argparse._SubParsersAction)), set())
    takes_value = {"--screenshot"}
    paths: list[str] = []
    rest: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            rest.append(arg)
            skip = arg in takes_value
        elif not paths and arg in commands:
            return [], list(argv)
        else:
            paths.append(arg)
    return paths, rest


def run_command(args: argparse.Namespace, exit_at_once: bool = False) -> int:
    """Run a subcommand: its outputs checked first; an unwritable output, a failed write or Ctrl-C
    end in one line on stderr (exit status 1, 1 and 130), never a traceback.

    A command declared cancellable (:func:`interruption.declare_cancellable`) runs with Ctrl-C
    setting ``interruption.CANCEL``, which its loops poll, instead of raising inside whatever
    library call is running; a second Ctrl-C raises ``KeyboardInterrupt``.

    ``exit_at_once`` (the command line, not a caller in Python): after Ctrl-C the process ends as
    soon as the command has unwound (its locks released, temporary files removed), skipping the
    interpreter's teardown, which takes over a second once torch is loaded. Worker processes end
    by their parent watchdog (``arfl_studio.data.child_processes``).
    """
    from arfl_studio.atomic import WriteError
    from arfl_studio.commands import interruption
    from arfl_studio.commands.outputs import OutputError, check_outputs

    interruption.reset()
    try:
        check_outputs(args)
        with interruption.ctrl_c_cancels() if getattr(args, "cancellable", False) else contextlib.nullcontext():
            status = int(args.func(args) or 0)
        if exit_at_once:
            shell_exit.finished(status)
        return status
    except (OutputError, WriteError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, interruption.Interrupted):
        print(f"\n{interruption.summary(args.command)}", file=sys.stderr, flush=True)
        if exit_at_once:
            shell_exit.exit_now(130)
        return 130
    except OSError as exc:  # a read or folder operation the command did not foresee: still one line
        where = f"{exc.filename}: " if exc.filename else ""
        reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]  # some wrap a traceback in it
        print(f"error: {where}{reason}", file=sys.stderr)
        return 1


def _print_any_file_name() -> None:
    """A file name whose bytes are not UTF-8 (lone surrogates in Python) prints as ``\\udcNN``
    instead of ending the command where the terminal's encoding is strict UTF-8."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # frozen app + spawn DataLoader workers (and the decoder processes)
    _print_any_file_name()
    parser = build_parser()
    from_shell = argv is None  # the command line, not a caller in Python
    paths, argv = split_paths(sys.argv[1:] if argv is None else list(argv), parser)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        parser.error(f"no such file or folder: {', '.join(missing)}")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command:
        return run_command(args, exit_at_once=from_shell)
    if args.install_desktop_entry:
        from arfl_studio.desktop_entry import install_desktop_entry

        written = install_desktop_entry()
        print(f"installed the launcher {written[0]} and {len(written) - 1} metainfo/icon files")
        return 0
    if args.screenshot:
        from arfl_studio.gui.app import run_screenshots

        return run_screenshots(args.screenshot)
    if paths and (args.headless or not _has_screen()):
        print(f"Opening {', '.join(paths)} needs the desktop app, and no screen was found.", file=sys.stderr)
        return 2
    if (args.headless or not _has_screen()) and not args.startup_probe:
        from arfl_studio.experiments.headless_demo import run_headless_demo

        print("No screen found: running the headless demo (use a desktop session for the app).")
        return run_headless_demo()
    from arfl_studio.gui.app import run_app

    return run_app(startup_probe=args.startup_probe, paths=paths)


if __name__ == "__main__":
    sys.exit(main())
