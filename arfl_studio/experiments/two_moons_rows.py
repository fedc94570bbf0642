"""The two-moon experiment's settings and its rows (paper Table 1 lettering), as data.

Both the training (``two_moons_training``) and the run (``two_moons``) read them, so
they live apart from either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from arfl_studio.training import AttackSettings, MethodSettings, SettingError
from arfl_studio.training.losses import ROBUST_VARIANTS


BASE_ROWS = ("A", "B", "C", "D", "D'", "E", "F", "F'", "G", "H")
OPTIMIZERS = ("adam", "sgd", "adamw")
FEATURE_POINTS = ("post", "pre")

# The paper's Table 1 (percent): key -> (standard mean, std, adversarial mean, std, mean accuracy).
PAPER_TABLE1 = {
    "A": (95.2, 0.4, 71.4, 1.8, 83.3),
    "B": (93.8, 2.5, 73.0, 2.1, 83.4),
    "C": (84.4, 3.4, 81.8, 2.3, 83.1),
    "D": (84.8, 4.3, 81.8, 0.8, 83.3),
    "E": (95.8, 1.2, 72.6, 1.2, 84.2),
    "F": (96.0, 0.9, 79.6, 5.3, 87.8),
    "G": (95.6, 0.8, 77.2, 0.7, 86.4),
    "H": (92.0, 0.6, 76.4, 1.4, 84.2),
}


@dataclass
class TwoMoonSettings:
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    epochs: int = 5000
    n_train: int = 10_000
    n_test: int = 1_000
    noise: float = 0.2
    hidden: tuple[int, ...] = (10, 10)
    activation: str = "relu"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 1000
    robust_weight: float = 0.5
    eps_train: float = 0.05
    eps_test: float = 0.2
    trades_beta: float = 6.0
    mirst_levels: tuple[float, ...] = (0.25, 0.5, 1.0)
    rows: tuple[str, ...] = BASE_ROWS
    variants: tuple[str, ...] = ("paper",)
    features: tuple[str, ...] = ("post",)
    pgd_steps: int = 50
    pgd_restarts: int = 5
    worst_case: bool = False
    grid: int = 41
    refine: int = 11
    refine_top: int = 3
    grid_check: bool = True  # with worst_case: also search a 2x finer lattice and report the difference
    mask_tolerance: float = 0.05
    device: str = "cpu"

    def validate(self) -> "TwoMoonSettings":
        if not self.seeds:
            raise SettingError("seeds: need at least one seed")
        if self.epochs < 1:
            raise SettingError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise SettingError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise SettingError(f"lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise SettingError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        unknown = [r for r in self.rows if r not in BASE_ROWS]
        if unknown:
            raise SettingError(f"rows {unknown} unknown; Table 1 rows are {list(BASE_ROWS)}")
        bad = [v for v in self.variants if v not in ROBUST_VARIANTS]
        if bad:
            raise SettingError(f"variant must be among {ROBUST_VARIANTS}, got {bad}")
        bad = [f for f in self.features if f not in FEATURE_POINTS]
        if bad:
            raise SettingError(f"features must be among {FEATURE_POINTS}, got {bad}")
        if self.grid < 2 or self.grid % 2 == 0:
            raise SettingError(f"grid must be odd and >= 3 (so the clean point is on the lattice), got {self.grid}")
        return self

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("hidden", "mirst_levels", "rows", "variants", "features"):
            data[key] = list(data[key])
        return data


@dataclass
class RowSpec:
    key: str
    name: str
    method: MethodSettings
    features: str = "post"
    base_key: str | None = None  # the row without ARFL (for paired differences)


def _base_row(key: str, s: TwoMoonSettings) -> RowSpec:
    attack = AttackSettings(kind="fgsm", eps=s.eps_train, clamp=None)
    lam = s.robust_weight
    table: dict[str, tuple[str, dict[str, Any], str | None]] = {
        "A": ("Standard training", dict(mix_ratio=1.0), None),
        "B": ("Standard training + ARFL", dict(mix_ratio=1.0, robust_weight=lam), "A"),
        "C": ("Adversarial training", dict(mix_ratio=0.0), None),
        "D": ("Adversarial training + ARFL", dict(mix_ratio=0.0, robust_weight=lam), "C"),
        "D'": ("Adversarial training + ARFL (Eq. 5 sign as printed)", dict(mix_ratio=0.0, robust_weight=lam, eq5_sign="as-printed"), "C"),
        "E": ("Dual adversarial training", dict(mix_ratio=0.5), None),
        "F": ("Dual adversarial training + ARFL", dict(mix_ratio=0.5, robust_weight=lam), "E"),
        "F'": (
            "Dual adversarial training + ARFL (Eq. 5 sign as printed)",
            dict(mix_ratio=0.5, robust_weight=lam, eq5_sign="as-printed"),
            "E",
        ),
        "G": ("TRADES", dict(scheme="trades", trades_beta=s.trades_beta), None),  # FGSM from a random start
        "H": ("MIRST", dict(scheme="mirst", mirst_levels=tuple(s.mirst_levels)), None),
    }
    name, kw, base = table[key]
    method = MethodSettings(key=key, name=name, attack=attack, **kw).validate()
    return RowSpec(key, name, method, "post", base)


def build_rows(s: TwoMoonSettings) -> list[RowSpec]:
    """The selected Table 1 rows, then each ARFL row again per extra (variant, features)."""
    rows = [_base_row(k, s) for k in BASE_ROWS if k in s.rows]
    extra = []
    for variant in s.variants:
        for features in s.features:
            if (variant, features) == ("paper", "post"):
                continue
            for row in rows:
                if not row.method.uses_arfl:
                    continue
                key = f"{row.key}[{variant}/{features}]"
                name = f"{row.name} [{variant} L_robust, {features}-activation features]"
                method = replace(row.method, key=key, name=name, robust_variant=variant)
                extra.append(RowSpec(key, name, method, features, row.base_key))
    if ("paper", "post") not in [(v, f) for v in s.variants for f in s.features]:
        rows = [r for r in rows if not r.method.uses_arfl]
    return rows + extra
