"""Training methods as data: the paper's rows A-I and custom settings.

Every method is one :class:`MethodSettings`. The r-mix objective (Eq. 4/5) covers
standard (r = 1), adversarial (r = 0, Madry) and dual adversarial (r = 0.5)
training, each with ARFL (lambda > 0) or without (lambda = 0). DSBN is the r-mix
with separate batch norms for the clean and adversarial halves; TRADES and MIRST
have their own objectives (see :mod:`arfl_studio.training.objective`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from arfl_studio.training.losses import ROBUST_VARIANTS

SCHEMES = ("mix", "dsbn", "trades", "mirst")
ATTACKS = ("fgsm", "pgd")
EQ5_SIGNS = ("consistent", "as-printed")
FEATURE_POINTS = ("post", "pre")


class SettingError(ValueError):
    """A setting is outside its allowed range; the message names both."""


@dataclass(frozen=True)
class AttackSettings:
    """How training-time adversarial examples are made (epsilon_1 in the paper)."""

    kind: str = "pgd"
    eps: float = 0.01
    steps: int = 7
    step_size: float | None = None  # None: 2.5 * eps / steps
    random_start: bool = True
    clamp: tuple[float, float] | None = (0.0, 1.0)

    def validate(self) -> None:
        if self.kind not in ATTACKS:
            raise SettingError(f"attack must be one of {ATTACKS}, got {self.kind!r}")
        if not self.eps >= 0:
            raise SettingError(f"attack eps (epsilon_1) must be >= 0, got {self.eps}")
        if self.steps < 1:
            raise SettingError(f"attack steps must be >= 1, got {self.steps}")
        if self.step_size is not None and not self.step_size > 0:
            raise SettingError(f"attack step_size must be > 0, got {self.step_size}")


@dataclass(frozen=True)
class MethodSettings:
    """One training method. ``key`` and ``name`` label it in tables."""

    key: str = "custom"
    name: str = "Custom"
    scheme: str = "mix"
    mix_ratio: float = 1.0  # r: share of clean data in each batch's loss
    robust_weight: float = 0.0  # lambda; 0 disables ARFL
    robust_variant: str = "paper"
    eq5_sign: str = "consistent"
    attack: AttackSettings = field(default_factory=AttackSettings)
    trades_beta: float = 6.0
    mirst_levels: tuple[float, ...] = (0.25, 0.5, 1.0)  # fractions of attack.eps

    @property
    def uses_arfl(self) -> bool:
        return self.robust_weight > 0

    @property
    def needs_attack(self) -> bool:
        return self.scheme != "mix" or self.mix_ratio < 1

    def validate(self) -> "MethodSettings":
        if self.scheme not in SCHEMES:
            raise SettingError(f"method scheme must be one of {SCHEMES}, got {self.scheme!r}")
        if not 0.0 <= self.mix_ratio <= 1.0:
            raise SettingError(f"mix_ratio r must be in [0, 1], got {self.mix_ratio}")
        if not self.robust_weight >= 0:
            raise SettingError(f"robust_weight lambda must be >= 0, got {self.robust_weight}")
        if self.robust_variant not in ROBUST_VARIANTS:
            raise SettingError(f"robust_variant must be one of {ROBUST_VARIANTS}, got {self.robust_variant!r}")
        if self.eq5_sign not in EQ5_SIGNS:
            raise SettingError(f"eq5_sign must be one of {EQ5_SIGNS}, got {self.eq5_sign!r}")
        if not self.trades_beta >= 0:
            raise SettingError(f"trades_beta must be >= 0, got {self.trades_beta}")
        if not self.mirst_levels or any(not 0 < level <= 1 for level in self.mirst_levels):
            raise SettingError(f"mirst_levels must be fractions of eps in (0, 1], got {self.mirst_levels}")
        self.attack.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mirst_levels"] = list(self.mirst_levels)
        data["attack"]["clamp"] = None if self.attack.clamp is None else list(self.attack.clamp)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MethodSettings":
        data = dict(data)
        attack = dict(data.pop("attack", {}) or {})
        if attack.get("clamp") is not None:
            attack["clamp"] = tuple(attack["clamp"])
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise SettingError(f"unknown method settings {sorted(unknown)}; allowed: {sorted(known)}")
        if "mirst_levels" in data:
            data["mirst_levels"] = tuple(data["mirst_levels"])
        return cls(attack=AttackSettings(**attack), **data).validate()


def _row(key, name, scheme="mix", r=1.0, arfl=False, **kw):
    return dict(key=key, name=name, scheme=scheme, mix_ratio=r, arfl=arfl, **kw)


# The paper's table rows (Tables 2-3 lettering; Table 1 has no DSBN row).
PAPER_ROWS = (
    _row("A", "Standard training"),
    _row("B", "Standard training + ARFL", arfl=True),
    _row("C", "Adversarial training", r=0.0),
    _row("D", "Adversarial training + ARFL", r=0.0, arfl=True),
    _row("E", "Dual adversarial training", r=0.5),
    _row("F", "Dual adversarial training + ARFL", r=0.5, arfl=True),
    _row("G", "DSBN", scheme="dsbn", r=0.5),
    _row("H", "TRADES", scheme="trades"),
    _row("I", "MIRST", scheme="mirst"),
)


def paper_method(key: str, robust_weight: float = 10.0, attack: AttackSettings | None = None, **overrides) -> MethodSettings:
    """A named preset for one of the paper's rows A-I (mammogram lettering).

    ``robust_weight`` is lambda for the ARFL rows (10 for mammograms, 0.5 for
    two-moon); rows without ARFL always get 0.
    """
    for row in PAPER_ROWS:
        if row["key"] == key.upper():
            settings = MethodSettings(
                key=row["key"],
                name=row["name"],
                scheme=row["scheme"],
                mix_ratio=row["mix_ratio"],
                robust_weight=robust_weight if row["arfl"] else 0.0,
                attack=attack or AttackSettings(),
            )
            return replace(settings, **overrides).validate()
    raise SettingError(f"unknown method {key!r}; the paper's rows are {[r['key'] for r in PAPER_ROWS]} (or use a custom method)")
