"""Headless subcommands of ``arfl-studio``.

Each module here defines ``register(subparsers)`` which adds its parser and sets
``func`` (a callable taking the parsed args and returning an exit code).
Every command takes ``--json PATH`` for a machine-readable result.
"""

from __future__ import annotations

import importlib
import pkgutil


def register_all(subparsers) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):  # helpers (outputs, interruption) have none
            module.register(subparsers)
