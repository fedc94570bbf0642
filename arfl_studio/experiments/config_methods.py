"""A config's ``[[methods]]`` entries: a paper row letter, a preset with overrides, or a custom
method with its own settings (checked key by key, never guessed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from arfl_studio.experiments.config_checks import check_clamp, check_fields, toml_value
from arfl_studio.training.methods import PAPER_ROWS, AttackSettings, MethodSettings, SettingError, paper_method

PAPER_KEYS = tuple(row["key"] for row in PAPER_ROWS)


def check_method_types(key: Any, entry: Mapping) -> None:
    """A [[methods]] entry's keys and value types (its [methods.attack] too)."""
    section = f"[[methods]] (key {toml_value(key)})" if key is not None else "[[methods]]"
    entry = dict(entry)
    attack = entry.pop("attack", None)
    check_fields(section, entry, MethodSettings, extra_keys=("preset",))
    if attack is not None:
        attack_section = f"[methods.attack] (method {toml_value(key)})"
        check_fields(attack_section, attack, AttackSettings)
        check_clamp(attack_section, attack.get("clamp"))


def check_key(key: str) -> None:
    if not key or any(c in key for c in "/\\:*?\"<>| ") or key.startswith("."):
        raise SettingError(f"method key {key!r} must be a short name usable as a folder name (no spaces or / \\ : * ? \" < > |)")


def parse_method(entry: Any, default_lambda: float = 10.0) -> MethodSettings:
    """One ``[[methods]]`` entry: a paper row letter, or a table with ``key`` (and/or ``preset``)."""
    if isinstance(entry, str):
        return paper_method(entry, robust_weight=default_lambda)
    if isinstance(entry, MethodSettings):
        return entry.validate()
    if not isinstance(entry, Mapping):
        raise SettingError(f"a [[methods]] entry must be a paper row letter or a table, got {toml_value(entry)}")
    check_method_types(entry.get("key", entry.get("preset")), entry)
    entry = dict(entry)
    preset = entry.pop("preset", None)
    key = entry.get("key", preset)
    if preset is None and key is not None and str(key).upper() in PAPER_KEYS:
        preset = str(key).upper()
    if preset is None:
        defined = set(entry) - {"key", "name"}
        if not defined:  # a typo for a row letter used to train a standard model called "Custom"
            raise SettingError(
                f"[[methods]] key = {toml_value(key)} is neither a paper row ({', '.join(PAPER_KEYS)}) "
                "nor a custom method: a custom method needs preset = \"A\"..\"I\" or its own settings "
                "(scheme, mix_ratio, robust_weight, attack, ...)"
            )
        entry.setdefault("name", str(key) if key is not None else "custom")
        return MethodSettings.from_dict(entry)
    base = paper_method(preset, robust_weight=entry.pop("robust_weight", default_lambda))
    attack = entry.pop("attack", None)
    if attack:
        attack = dict(attack)
        if attack.get("clamp") is not None:
            attack["clamp"] = tuple(attack["clamp"])
        base = replace(base, attack=replace(base.attack, **attack))
    if "mirst_levels" in entry:
        entry["mirst_levels"] = tuple(entry["mirst_levels"])
    known = set(MethodSettings.__dataclass_fields__)
    unknown = set(entry) - known
    if unknown:
        raise SettingError(f"unknown method settings {sorted(unknown)}; allowed: {sorted(known | {'preset'})}")
    return replace(base, **entry).validate()
