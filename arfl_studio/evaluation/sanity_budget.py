"""What the sanity checks of an attack evaluation will cost, before they run, and how many
probe images keep them within a budget.

Costs are in forward-pass units per image (:func:`~arfl_studio.evaluation.progress.attack_units`:
a gradient step costs three). The requested attack runs on every image at every eps > 0;
the reference attacks (probes) at every eps and the large-eps check once run on the
probe images; the input-gradient check is one backward pass on every image. By default
(``budget`` 1.0) the probe images are chosen so that the checks cost at most as much as
the requested attack; ``budget=None`` runs them on every image (the full set).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from arfl_studio.evaluation.attacks import DEFAULT_QUERIES, DEFAULT_RESTARTS, DEFAULT_STEPS
from arfl_studio.evaluation.progress import GRADIENT_UNITS, attack_units

MIN_PROBE_IMAGES = 16  # fewer give AUC intervals too wide to compare attacks at all
DEFAULT_BUDGET = 1.0


@dataclass(frozen=True)
class SanityPlan:
    images: int
    probe_images: int  # images the probes and the large-eps check run on
    attack_units: float  # the requested attack on all images, forward passes
    sanity_units: float  # the checks as planned, forward passes
    budget: float | None  # the checks' allowed cost as a multiple of the attack's (None: full set)

    @property
    def ratio(self) -> float:
        return self.sanity_units / self.attack_units if self.attack_units else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}

    def describe(self) -> str:
        how = "the full set" if self.budget is None else f"budget {self.budget:g}x the attack"
        return (
            f"sanity checks on {self.probe_images} of {self.images} images ({how}): estimated "
            f"{self.ratio:.2f}x the cost of the requested attack"
        )


def _units(name: str, steps, restarts, queries, loss: str = "margin") -> int:
    return attack_units(
        name, steps or DEFAULT_STEPS.get(name, 1), restarts or DEFAULT_RESTARTS.get(name, 1), queries or DEFAULT_QUERIES, loss
    )


def plan_sanity(
    *,
    attack: str,
    eps: list[float],
    images: int,
    probes: list[str],
    probe_queries: int,
    large_attack: str | None,
    steps=None,
    restarts=None,
    queries=None,
    loss: str = "margin",
    probe_images: int | None = None,
    budget: float | None = DEFAULT_BUDGET,
) -> SanityPlan:
    """The checks' plan: ``probe_images`` if given, else as many as ``budget`` allows (at least
    :data:`MIN_PROBE_IMAGES`, at most all ``images``)."""
    active = [e for e in eps if e > 0]
    main = _units(attack, steps, restarts, queries, loss) * len(active)
    per_probe_image = sum(attack_units(p, DEFAULT_STEPS.get(p, 1), 1, probe_queries) for p in probes) * len(active)
    if large_attack is not None:
        per_probe_image += _units(large_attack, steps, restarts if large_attack == attack else None, queries, loss)
    if probe_images is None:
        if budget is None or per_probe_image == 0:
            probe_images = images
        else:
            affordable = int((budget * main - GRADIENT_UNITS) * images // per_probe_image)
            probe_images = min(images, max(MIN_PROBE_IMAGES, affordable))
    probe_images = min(images, probe_images)
    return SanityPlan(images, probe_images, float(main * images), float(per_probe_image * probe_images + GRADIENT_UNITS * images), budget)
