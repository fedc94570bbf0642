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


def check_range(
    section: str, key: str, value: Any, *, minimum: float | None = None, maximum: float | None = None, above: float | None = None
) -> None:
    """A numeric value's range: ``minimum``/``maximum`` inclusive, ``above`` exclusive."""
    if value is None:
        return
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) or (above is not None and not value > above):
        allowed = []
        if above is not None:
            allowed.append(f"> {above:g}")
        if minimum is not None:
            allowed.append(f">= {minimum:g}")
        if maximum is not None:
            allowed.append(f"<= {maximum:g}")
        raise SettingError(f"{section} {key} = {toml_value(value)} is not allowed: it must be {' and '.join(allowed)}")


SEED_MAX = 2**32 - 1  # numpy's seed range
_STEPS = 100_000

# Every number a config can set and its allowed range, (low, high), both inclusive; a low
# written as ``("above", x)`` is exclusive. The ranges are generous: they catch typos and
# absurd values (``epochs = 1e20`` would never finish, ``lr = 1e6`` diverges at once), not
# experiments. ``docs`` and the messages quote this table; extend it with every new number.
NUMBER_RANGES: dict[str, dict[str, tuple[Any, float]]] = {
    "[data]": {
        "demo_patients": (1, 100_000),
        "demo_seed": (0, SEED_MAX),
        "synthetic_samples": (4, 1_000_000),
        "synthetic_seed": (0, SEED_MAX),
    },
    "[model]": {"width": (1, 4096)},
    "[training]": {
        "epochs": (0, 100_000),
        "batch_size": (1, 65_536),
        "eval_batch_size": (1, 65_536),
        "lr": (("above", 0.0), 10.0),
        "weight_decay": (0.0, 10.0),
        "momentum": (0.0, 1.0),
        "workers": (0, 256),
        "seed": (0, SEED_MAX),
        "validate_every": (0, _STEPS),
        "validate_adversarial_every": (0, _STEPS),
        "validation_attack_steps": (1, _STEPS),
        "checkpoint_every": (0, _STEPS),
        "threshold_holdout": (0.0, 0.5),
    },
    "[cv]": {"folds": (2, 1000), "seed": (0, SEED_MAX)},
    "[evaluation]": {
        "eps": (0.0, 1.0),
        "steps": (1, _STEPS),
        "step_size": (("above", 0.0), 1.0),
        "restarts": (1, 10_000),
        "seed": (0, SEED_MAX),
    },
    "[[methods]]": {"mix_ratio": (0.0, 1.0), "robust_weight": (0.0, 1e6), "trades_beta": (0.0, 1e6)},
    "[methods.attack]": {"eps": (0.0, 1.0), "steps": (1, _STEPS), "step_size": (("above", 0.0), 1.0)},
}


def check_ranges(section: str, values: Mapping, shown: str | None = None) -> None:
    """Each number of ``values`` that :data:`NUMBER_RANGES` lists for ``section`` against its range
    (messages name ``shown``, e.g. the method's key, else the section)."""
    for key, (low, high) in NUMBER_RANGES.get(section, {}).items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # None (unset) or a type the type checks report
        if isinstance(low, tuple):
            check_range(shown or section, key, value, above=low[1], maximum=high)
        else:
            check_range(shown or section, key, value, minimum=low, maximum=high)


def check_method_ranges(method: Any) -> None:
    """A method's numbers (and its attack's) against :data:`NUMBER_RANGES`."""
    data = method.to_dict()
    check_ranges("[[methods]]", data, f"[[methods]] (key {toml_value(method.key)})")
    check_ranges("[methods.attack]", data["attack"], f"[methods.attack] (method {toml_value(method.key)})")


def check_clamp(section: str, clamp) -> None:
    if clamp is not None and (len(clamp) != 2 or not clamp[0] < clamp[1]):
        raise SettingError(
            f"{section} clamp = {toml_value(list(clamp))} is not allowed: it must be [low, high] with low < high (or left out)"
        )


def check_preprocess(preprocess: Mapping) -> None:
    """[preprocess] against the data layer's PreprocessSettings (checked here, before any file is written)."""
    from arfl_studio.data.preprocess.settings import PreprocessSettings

    data = dict(preprocess)
    size = data.pop("size", None)
    check_fields("[preprocess]", data, PreprocessSettings, extra_keys=("size",))
    if size is not None and not (check_size_value(size)):
        raise SettingError(
            f"[preprocess] size = {toml_value(size)} is not allowed: it must be [rows, columns] (or one number for a square), each 8..8192"
        )
    try:
        PreprocessSettings(**data, **({"size": size} if size is not None else {}))
    except ValueError as exc:
        raise SettingError(f"[preprocess] {exc}") from exc


def check_size_value(size: Any) -> bool:
    def whole(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if whole(size):
        return 8 <= size <= 8192
    return isinstance(size, (list, tuple)) and len(size) == 2 and all(whole(v) and 8 <= v <= 8192 for v in size)
