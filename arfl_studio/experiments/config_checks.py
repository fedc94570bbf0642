"""Type checks for config values, driven by the settings dataclasses' annotations.

TOML gives strings, booleans, integers and floats (including ``inf`` and ``nan``);
the settings dataclasses would accept any of them silently (``epochs = true`` ran
one epoch, ``eps = inf`` gave an AUC of 0). Every value is checked against its
field's annotation before a dataclass is built, and the message names the section,
the key, the value and what is allowed. Booleans are not integers here, and floats
must be finite.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import fields
from typing import Any, Mapping

from arfl_studio.training.methods import SettingError


def toml_value(value: Any) -> str:
    """How a value looks in a TOML file (``true``, ``"three"``, ``inf``), for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts)
    if hint is bool:
        return "true or false"
    if hint is int:
        return "an integer"
    if hint is float:
        return "a finite number"
    if hint is str:
        return "a string"
    if origin in (list, tuple):
        if origin is tuple and len(args) >= 2 and args[-1] is not Ellipsis:
            return f"a list of {len(args)} values, each {_describe(args[0])}"
        return f"a list of values, each {_describe(args[0]) if args else 'any'}"
    return "a value"


def _fits(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
        return not args or all(_fits(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, Mapping)
    return True


def check_value(section: str, key: str, value: Any, hint: Any) -> None:
    if not _fits(value, hint):
        name = f"{section} {key}".strip()
        raise SettingError(f"{name} = {toml_value(value)} is not allowed: it must be {_describe(hint)}")


def check_fields(section: str, data: Mapping, cls: type, extra_keys: tuple[str, ...] = ()) -> None:
    """Unknown keys and the type of every value of ``data`` against dataclass ``cls``'s fields."""
    if not isinstance(data, Mapping):
        raise SettingError(f"{section} must be a table of settings, got {toml_value(data)}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)} | set(extra_keys)
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingError(f"unknown settings in {section}: {unknown}; allowed: {sorted(known)}")
    for key, value in data.items():
        if key in hints:
            check_value(section, key, value, hints[key])


def check_range(section: str, key: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                above: float | None = None) -> None:
    """A numeric value's range: ``minimum``/``maximum`` inclusive, ``above`` exclusive."""
    if value is None:
        return
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
            or (above is not None and not value > above):
        allowed = []
        if above is not None:
            allowed.append(f"> {above:g}")
        if minimum is not None:
            allowed.append(f">= {minimum:g}")
        if maximum is not None:
            allowed.append(f"<= {maximum:g}")
        raise SettingError(f"{section} {key} = {toml_value(value)} is not allowed: it must be {' and '.join(allowed)}")
