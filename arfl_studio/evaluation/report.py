"""The result of an attack evaluation: metrics per eps, flipped cases (reproducible), JSON.

Every flipped case carries the attack settings that produced it, and — within a memory
budget — its model-space perturbation delta (float16, (C, H, W)), kept in memory only
(never in JSON). The adversarial logits of the report are computed on exactly
``project(x + delta.float(), x, eps, clamp)``, so a viewer that rebuilds the
adversarial input with :meth:`RobustnessReport.adversarial_input` from the same
preprocessed image gets the report's numbers (up to batch-vs-single float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_curve

from arfl_studio.atomic import finite_json
from arfl_studio.evaluation.sanity import SanityWarning
from arfl_studio.training.attacks import project
from arfl_studio.training.metrics import roc_auc


def _auc(targets, scores) -> float:
    scores = np.asarray(scores, dtype=float)
    if not np.all(np.isfinite(scores)):
        return float("nan")
    return roc_auc(np.asarray(targets).astype(int), scores)


def threshold_metrics(targets: np.ndarray, logits: np.ndarray, threshold: float = 0.0) -> dict[str, float]:
    """AUC, and accuracy / sensitivity / specificity at a logit threshold (NaN where undefined)."""
    targets = np.asarray(targets) > 0.5
    pred = np.asarray(logits) > threshold
    pos, neg = targets.sum(), (~targets).sum()
    return {
        "auc": _auc(targets, logits),
        "accuracy": float(np.mean(pred == targets)) if len(targets) else float("nan"),
        "sensitivity": float((pred & targets).sum() / pos) if pos else float("nan"),
        "specificity": float((~pred & ~targets).sum() / neg) if neg else float("nan"),
    }


def sample_size(targets, logits) -> dict[str, Any]:
    """What a metric was computed on: n images (positives / negatives), and the AUC's 95 % DeLong interval."""
    from arfl_studio.evaluation.roc_stats import delong_auc_ci

    t = np.asarray(targets) > 0.5
    out: dict[str, Any] = {"n": int(len(t)), "n_positive": int(t.sum()), "n_negative": int((~t).sum()), "auc_ci": None, "auc_se": None}
    try:
        _, lo, hi, se = delong_auc_ci(t, logits)
        out.update(auc_ci=[lo, hi], auc_se=se)
    except ValueError:  # one class only, or non-finite logits: no interval
        pass
    return out


def size_text(metrics: dict) -> str:
    """'AUC 0.812 (95% CI 0.70-0.92) on 40 images (20 pos / 20 neg)' from a metrics dict with sizes."""
    auc, ci = metrics.get("auc"), metrics.get("auc_ci")
    text = f"AUC {_fmt(auc, 0)}" if auc is not None else "AUC n/a"
    if ci:
        text += f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})"
    return text + f" on {metrics['n']} images ({metrics['n_positive']} pos / {metrics['n_negative']} neg)"


def auc_note(targets: np.ndarray) -> str | None:
    """Why AUC is undefined, or None when it is defined."""
    t = np.asarray(targets) > 0.5
    if len(t) == 0:
        return "AUC undefined: no images were evaluated"
    if t.all() or (~t).all():
        return (
            f"AUC undefined: the evaluated images hold only one class ({int((~t).sum())} benign, "
            f"{int(t.sum())} malignant); accuracy, sensitivity and specificity are still given"
        )
    return None


def _roc(targets: np.ndarray, scores: np.ndarray, max_points: int = 201) -> dict[str, list[float]]:
    if len(np.unique(targets)) < 2 or not np.all(np.isfinite(scores)):
        return {"fpr": [], "tpr": []}
    fpr, tpr, _ = roc_curve(targets, scores)
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(int))
        fpr, tpr = fpr[keep], tpr[keep]
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -80, 80)))


def _ci(size: dict) -> str:
    return "n/a" if not size.get("auc_ci") else f"{size['auc_ci'][0]:.3f}-{size['auc_ci'][1]:.3f}"


def _fmt(v: float, width: int = 7) -> str:
    return f"{v:{width}.3f}" if math.isfinite(v) else f"{'n/a':>{width}}"


REPLAYED = (
    "attack",
    "eps",
    "steps",
    "restarts",
    "step_size",
    "queries",
    "loss",
    "clamp",
    "probes",
    "probe_queries",
    "probe_images",
    "large_eps",
    "tolerance",
    "seed",
    "batch_size",
)


def replay_arguments(doc: dict) -> dict[str, Any]:
    """Keyword arguments of :func:`~arfl_studio.evaluation.robustness.evaluate_robustness` that
    re-run the evaluation an attack JSON (``RobustnessReport.to_json``) describes, on the same images."""
    settings = doc["settings"]
    args = {k: settings.get(k) for k in REPLAYED if k in settings}
    args["attack"] = doc["attack"]
    args["threshold"] = doc["threshold_logit"]
    args["clamp"] = tuple(args["clamp"]) if args.get("clamp") else None
    args["probes"] = list(args.get("probes") or [])  # the probes that ran, exactly (an empty list: none)
    return args


@dataclass
class RobustnessReport:
    attack: str
    settings: dict[str, Any]
    threshold: float
    targets: np.ndarray
    clean_logits: np.ndarray
    eps: list[float]
    adversarial_logits: dict[float, np.ndarray]
    probes: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)  # reference attacks, on probe_indices
    cases: list[dict[str, Any]] = field(default_factory=list)  # per sample: index, id, patient_id ...
    zero_gradients: int = 0
    nan_gradients: int = 0
    warnings: list[SanityWarning] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    members: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)  # ensemble members' logits (worst)
    probe_indices: np.ndarray | None = None  # images the probes ran on (None: all)
    gradient_stats: dict[str, Any] = field(default_factory=dict)
    large_eps_check: dict[str, Any] | None = None
    deltas: dict[tuple[float, int], np.ndarray] = field(default_factory=dict, repr=False)  # (eps, index) -> float16
    checks: list[str] = field(default_factory=list)  # plain sentences: the sanity checks that ran

    # ------------------------------------------------------------------ metrics
    @property
    def clean(self) -> dict[str, float]:
        return threshold_metrics(self.targets, self.clean_logits, self.threshold)

    def adversarial(self, eps: float) -> dict[str, float]:
        return threshold_metrics(self.targets, self.adversarial_logits[eps], self.threshold)

    def auc_curve(self) -> tuple[list[float], list[float]]:
        """(eps values, adversarial AUC) — the robustness curve."""
        return list(self.eps), [self.adversarial(e)["auc"] for e in self.eps]

    def margins(self, logits: np.ndarray) -> np.ndarray:
        """Per sample -(2y - 1)(z - t): > 0 exactly when the prediction is wrong."""
        return -(2 * (self.targets > 0.5).astype(float) - 1) * (np.asarray(logits, dtype=float) - self.threshold)

    # ------------------------------------------------------------ flipped cases
    def attack_settings(self, eps: float) -> dict[str, Any]:
        """Everything that made this eps's adversarial examples (stored with each flipped case)."""
        keys = ("steps", "restarts", "step_size", "loss", "queries", "seed", "clamp")
        return {
            "attack": self.attack,
            "eps": float(eps),
            **{k: self.settings.get(k) for k in keys},
            "parameters": (self.settings.get("parameters") or {}).get(f"{float(eps):g}"),
            "threshold_logit": self.threshold,
        }

    def flipped(self, eps: float, logits: np.ndarray | None = None) -> list[dict[str, Any]]:
        adv = self.adversarial_logits[eps] if logits is None else logits
        before, after = self.clean_logits > self.threshold, adv > self.threshold
        settings = self.attack_settings(eps)
        out = []
        for i in np.flatnonzero(before != after):
            case: dict[str, Any] = dict(self.cases[i]) if i < len(self.cases) else {"index": int(i)}
            case.update(
                label=int(self.targets[i] > 0.5),
                clean_prob=float(_sigmoid(self.clean_logits[i])),
                adversarial_prob=float(_sigmoid(adv[i])),
                clean_logit=float(self.clean_logits[i]),
                adversarial_logit=float(adv[i]),
                delta_kept=(float(eps), int(i)) in self.deltas,
                attack_settings=dict(settings),
            )
            out.append(case)
        return out

    def case_delta(self, eps: float, index: int) -> np.ndarray | None:
        """The model-space perturbation (float16, (C, H, W)) of a flipped case, or None if not kept."""
        return self.deltas.get((float(eps), int(index)))

    def adversarial_input(self, eps: float, index: int, image: torch.Tensor) -> torch.Tensor | None:
        """The exact adversarial input of case ``index`` at ``eps`` from its preprocessed ``image`` (C, H, W).

        ``image`` must be the same preprocessed tensor the evaluation saw (same dataset item).
        """
        delta = self.case_delta(eps, index)
        if delta is None:
            return None
        x = image.detach().float()
        clamp = self.settings.get("clamp")
        d = torch.from_numpy(np.asarray(delta)).to(x.device).float()
        return project(x + d, x, float(eps), tuple(clamp) if clamp else None)

    def shift_summary(self, eps: float) -> dict[str, Any]:
        """How the cases moved at ``eps``: flipped, moved against their label without crossing, and why none flipped."""
        adv = self.adversarial_logits[eps]
        before, after = self.clean_logits > self.threshold, adv > self.threshold
        flipped = before != after
        moved = (self.margins(adv) > self.margins(self.clean_logits)) & ~flipped
        wrong = self.margins(self.clean_logits) > 0
        reason = None
        if not flipped.any():
            n = len(self.targets)
            p = float(_sigmoid(np.array(self.threshold)))
            if n == 0:
                reason = "no images were evaluated"
            elif eps == 0:
                reason = "eps is 0: nothing was perturbed"
            else:
                reason = (
                    f"no prediction crossed the decision threshold (probability {p:.3f}, logit "
                    f"{self.threshold:g}): {int(moved.sum())} of {n} cases moved against their label without "
                    f"crossing it; {int(wrong.sum())} were already misclassified before the attack"
                )
        return {
            "flipped_count": int(flipped.sum()),
            "moved_against_label": int(moved.sum()),
            "misclassified_clean": int(wrong.sum()),
            "empty_reason": reason,
        }

    def group_metrics(self, group: dict[str, dict[float, np.ndarray]]) -> dict[str, list[dict[str, float]]]:
        """Metrics per eps of the probes (on the probe images) or the ensemble members (on all images)."""
        pick = slice(None) if group is not self.probes or self.probe_indices is None else self.probe_indices
        t = self.targets[pick]
        return {
            name: [{"eps": e, **threshold_metrics(t, v, self.threshold), **sample_size(t, v)} for e, v in sorted(r.items())]
            for name, r in group.items()
        }

    # --------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """Plain, valid JSON (NaN -> null; deltas are not included)."""
        targets = (self.targets > 0.5).astype(int)
        results = []
        for e in self.eps:
            adv = self.adversarial_logits[e]
            flips = self.flipped(e)
            results.append(
                {
                    "eps": e,
                    **self.adversarial(e),
                    **sample_size(targets, adv),
                    **self.shift_summary(e),
                    "flipped": flips,
                    "roc": _roc(targets, adv),
                }
            )
        doc = {
            "attack": self.attack,
            "settings": self.settings,
            "threshold_logit": self.threshold,
            "threshold_prob": float(_sigmoid(np.array(self.threshold))),
            "n": int(len(targets)),
            "n_positive": int(targets.sum()),
            "n_negative": int(len(targets) - targets.sum()),
            "auc_note": auc_note(self.targets),
            "clean": {**self.clean, **sample_size(targets, self.clean_logits), "roc": _roc(targets, self.clean_logits)},
            "results": results,
            "auc_curve": {"eps": list(self.eps), "adversarial_auc": self.auc_curve()[1]},
            "probes": self.group_metrics(self.probes),
            "probe_images": None if self.probe_indices is None else len(self.probe_indices),
            "members": self.group_metrics(self.members),
            "gradient_check": {
                "zero_input_gradients": self.zero_gradients,
                "nan_input_gradients": self.nan_gradients,
                **self.gradient_stats,
            },
            "large_eps_check": self.large_eps_check,
            "warnings": [w.to_dict() for w in self.warnings],
            "checks_run": list(self.checks),
            "sanity_summary": self.sanity_summary(),
            "seconds": self.seconds,
        }
        return finite_json(doc)

    def sanity_summary(self) -> str:
        """One sentence for a summary line: which checks failed, or which ran and passed."""
        if self.warnings:
            return f"{len(self.warnings)} sanity check(s) failed: {', '.join(w.name for w in self.warnings)}"
        return "Sanity checks passed: " + "; ".join(self.checks) + "." if self.checks else "No sanity checks ran."

    def table(self) -> str:
        """A human-readable summary (the CLI prints it)."""
        c = self.clean
        size = sample_size(self.targets, self.clean_logits)
        lines = [
            f"attack {self.attack}  on {size['n']} images ({size['n_positive']} positive / {size['n_negative']} "
            f"negative)  threshold logit {self.threshold:g}",
            "metrics as fractions; AUC with its 95% DeLong interval",
            f"{'eps':>10} {'AUC':>7} {'95% CI':>13} {'acc':>7} {'sens':>7} {'spec':>7} {'flipped':>8} {'moved':>6}",
            f"{'clean':>10} {_fmt(c['auc'])} {_ci(size):>13} {_fmt(c['accuracy'])} {_fmt(c['sensitivity'])} "
            f"{_fmt(c['specificity'])} {'':>8} {'':>6}",
        ]
        for e in self.eps:
            a, s = self.adversarial(e), self.shift_summary(e)
            ci = _ci(sample_size(self.targets, self.adversarial_logits[e]))
            lines.append(
                f"{e:10.3g} {_fmt(a['auc'])} {ci:>13} {_fmt(a['accuracy'])} {_fmt(a['sensitivity'])} "
                f"{_fmt(a['specificity'])} {s['flipped_count']:8d} {s['moved_against_label']:6d}"
            )
        for kind, group in (("member", self.group_metrics(self.members)), ("probe", self.group_metrics(self.probes))):
            for name, rows in group.items():
                cells = "; ".join(f"eps={r['eps']:g} {size_text(r)}, acc {_fmt(r['accuracy'], 0)}" for r in rows)
                lines.append(f"  {kind} {name}: {cells}")
        if self.large_eps_check:
            big = self.large_eps_check
            lines.append(f"  large-eps check: {big.get('attack')} at eps={big['eps']:g}: {size_text(big)}, acc {_fmt(big['accuracy'], 0)}")
        plan = self.settings.get("sanity_plan")
        if plan:
            spent = self.seconds.get("sanity", 0.0) + self.seconds.get("gradient_check", 0.0)
            lines.append(
                f"sanity checks on {plan['probe_images']} of {plan['images']} images: estimated "
                f"{plan['ratio']:.2f}x the attack's cost"
                + (f", measured {spent:.1f} s for a {self.seconds['attack']:.1f} s attack" if self.seconds.get("attack") else "")
            )
        note = auc_note(self.targets)
        if note:
            lines.append(note)
        lines.append("moved = cases pushed against their label without crossing the threshold")
        lines += [f"WARNING {w.name}: {w.message}" for w in self.warnings] or [self.sanity_summary()]
        return "\n".join(lines)
