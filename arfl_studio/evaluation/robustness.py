"""Attack evaluation: clean vs adversarial AUC / accuracy / sensitivity / specificity
over an eps sweep, the cases whose prediction flipped, and sanity checks.

The sweep loops over batches outside and eps inside: each batch is loaded (and
preprocessed) once and its clean forward pass is done once, whatever the number of
eps values; the model is moved to the device once.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import roc_curve

from arfl_studio.evaluation.attacks import ATTACKS, GRADIENT_FREE, run_attack
from arfl_studio.evaluation.sanity import SanityWarning, sanity_checks
from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.training.attacks import attack_mode
from arfl_studio.training.devices import resolve_device
from arfl_studio.training.metrics import roc_auc

LARGE_EPS = 0.3  # pixel space [0, 1]: far beyond any perceptual budget
PROBE_QUERIES = 200


class EvaluationCancelled(RuntimeError):
    """The cancel flag was set during an attack evaluation."""


@dataclass(frozen=True)
class EvaluationProgress:
    done: int  # batches finished
    total: int
    stage: str  # "attack" | "probes" | "done"


def _auc(targets, scores) -> float:
    scores = np.asarray(scores, dtype=float)
    if not np.all(np.isfinite(scores)):
        return float("nan")
    return roc_auc(np.asarray(targets).astype(int), scores)


def threshold_metrics(targets: np.ndarray, logits: np.ndarray, threshold: float = 0.0) -> dict[str, float]:
    """AUC, and accuracy / sensitivity / specificity at a logit threshold."""
    targets = np.asarray(targets) > 0.5
    pred = np.asarray(logits) > threshold
    pos, neg = targets.sum(), (~targets).sum()
    return {
        "auc": _auc(targets, logits),
        "accuracy": float(np.mean(pred == targets)) if len(targets) else float("nan"),
        "sensitivity": float((pred & targets).sum() / pos) if pos else float("nan"),
        "specificity": float((~pred & ~targets).sum() / neg) if neg else float("nan"),
    }


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


@dataclass
class RobustnessReport:
    attack: str
    settings: dict[str, Any]
    threshold: float
    targets: np.ndarray
    clean_logits: np.ndarray
    eps: list[float]
    adversarial_logits: dict[float, np.ndarray]
    probes: dict[str, dict[float, np.ndarray]] = field(default_factory=dict)
    cases: list[dict[str, Any]] = field(default_factory=list)  # per sample: index, id, patient_id ...
    zero_gradients: int = 0
    nan_gradients: int = 0
    warnings: list[SanityWarning] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def clean(self) -> dict[str, float]:
        return threshold_metrics(self.targets, self.clean_logits, self.threshold)

    def adversarial(self, eps: float) -> dict[str, float]:
        return threshold_metrics(self.targets, self.adversarial_logits[eps], self.threshold)

    def auc_curve(self) -> tuple[list[float], list[float]]:
        """(eps values, adversarial AUC) — the robustness curve."""
        return list(self.eps), [self.adversarial(e)["auc"] for e in self.eps]

    def flipped(self, eps: float, logits: np.ndarray | None = None) -> list[dict[str, Any]]:
        adv = self.adversarial_logits[eps] if logits is None else logits
        before, after = self.clean_logits > self.threshold, adv > self.threshold
        out = []
        for i in np.flatnonzero(before != after):
            case = dict(self.cases[i]) if i < len(self.cases) else {"index": int(i)}
            case.update(
                label=int(self.targets[i] > 0.5),
                clean_prob=float(_sigmoid(self.clean_logits[i])),
                adversarial_prob=float(_sigmoid(adv[i])),
            )
            out.append(case)
        return out

    def to_json(self) -> dict[str, Any]:
        targets = (self.targets > 0.5).astype(int)
        results = []
        for e in self.eps:
            adv = self.adversarial_logits[e]
            flips = self.flipped(e)
            results.append({
                "eps": e, **self.adversarial(e),
                "flipped_count": len(flips),
                "flipped": flips,
                "roc": _roc(targets, adv),
            })
        return {
            "attack": self.attack,
            "settings": self.settings,
            "threshold_logit": self.threshold,
            "threshold_prob": float(_sigmoid(np.array(self.threshold))),
            "n": int(len(targets)),
            "n_positive": int(targets.sum()),
            "clean": {**self.clean, "roc": _roc(targets, self.clean_logits)},
            "results": results,
            "auc_curve": {"eps": list(self.eps), "adversarial_auc": self.auc_curve()[1]},
            "probes": {name: [{"eps": e, **threshold_metrics(self.targets, v, self.threshold)} for e, v in sorted(runs.items())]
                       for name, runs in self.probes.items()},
            "gradient_check": {"zero_input_gradients": self.zero_gradients, "nan_input_gradients": self.nan_gradients},
            "warnings": [w.to_dict() for w in self.warnings],
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """A human-readable summary (the CLI prints it)."""
        c = self.clean
        lines = [f"attack {self.attack}  n={len(self.targets)}  threshold logit {self.threshold:g}",
                 f"{'eps':>10} {'AUC':>7} {'acc':>7} {'sens':>7} {'spec':>7} {'flipped':>8}",
                 f"{'clean':>10} {c['auc']:7.3f} {c['accuracy']:7.3f} {c['sensitivity']:7.3f} {c['specificity']:7.3f} {'':>8}"]
        for e in self.eps:
            a = self.adversarial(e)
            lines.append(f"{e:10.3g} {a['auc']:7.3f} {a['accuracy']:7.3f} {a['sensitivity']:7.3f} "
                         f"{a['specificity']:7.3f} {len(self.flipped(e)):8d}")
        lines += [f"WARNING {w.name}: {w.message}" for w in self.warnings] or ["sanity checks: no warnings"]
        return "\n".join(lines)


def _case_info(i: int, record: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"index": i}
    if record is None:
        return info
    if isinstance(record, str):
        info["id"] = record
        return info
    if isinstance(record, dict):
        info.update({k: record[k] for k in ("id", "rel_path", "patient_id", "laterality", "view") if k in record})
        return info
    rel = getattr(record, "rel_path", None)
    info["id"] = str(rel) if rel is not None else str(getattr(record, "path", i))
    for key in ("patient_id", "laterality", "view"):
        if getattr(record, key, None) is not None:
            info[key] = getattr(record, key)
    return info


def _batches(images, targets, batch_size: int, workers: int):
    if isinstance(images, torch.Tensor):
        if targets is None:
            raise ValueError("targets are required when images is a tensor")
        targets = torch.as_tensor(targets).float()
        if len(targets) != len(images):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        total = math.ceil(len(images) / batch_size)
        return total, ((images[i : i + batch_size], targets[i : i + batch_size]) for i in range(0, len(images), batch_size))
    loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)
    return len(loader), ((x, torch.as_tensor(t).float()) for x, *rest in loader for t in [rest[0]])


def input_gradient_check(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(number of samples whose logit has an all-zero input gradient, number with non-finite ones)."""
    with attack_mode(model), torch.enable_grad():
        x = x.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x).float().sum(), x)
    flat = grad.reshape(len(x), -1)
    nonfinite = ~torch.isfinite(flat).all(dim=1)
    zero = (flat == 0).all(dim=1) & ~nonfinite
    return int(zero.sum()), int(nonfinite.sum())


def _probe_attacks(attack: str) -> list[str]:
    if attack == "fgsm":
        return ["pgd", "square"]
    if attack in GRADIENT_FREE:
        return ["fgsm", "pgd"]
    return ["fgsm", "square"]


def evaluate_robustness(
    model: nn.Module,
    images,
    targets=None,
    attack: str = "pgd",
    eps: float | Sequence[float] = (1e-4,),
    steps: int | None = None,
    restarts: int | None = None,
    *,
    step_size: float | None = None,
    queries: int | None = None,
    threshold: float = 0.0,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    records: Sequence[Any] | None = None,
    probes: bool | Sequence[str] = True,
    probe_queries: int = PROBE_QUERIES,
    large_eps: float | None = LARGE_EPS,
    tolerance: float = 0.02,
    batch_size: int = 32,
    workers: int = 0,
    device: str | torch.device = "auto",
    seed: int = 0,
    callback: Callable[[EvaluationProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RobustnessReport:
    """Evaluate ``model`` under ``attack`` at every eps, with sanity checks.

    ``images``: a tensor (N, C, H, W) in [0, 1] with ``targets`` (N,) in {0, 1}, or a
    Dataset yielding (image, label). ``records`` (optional, one per sample: ImageRecord,
    dict or str) name the flipped cases. ``probes``: reference attacks run at the same
    eps for the sanity checks (True: FGSM and a Square probe with ``probe_queries``
    queries for white-box attacks; FGSM and PGD for Square); False for none.
    ``large_eps``: if the sweep's largest eps is smaller, the attack is also run there
    to check that it breaks the model (None: skip).
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    eps_list = sorted({float(e) for e in ([eps] if isinstance(eps, (int, float)) else eps)})
    if not eps_list or any(not (e >= 0) for e in eps_list):
        raise ValueError(f"eps must be one or more values >= 0, got {eps}")
    probe_names = _probe_attacks(attack) if probes is True else list(probes or [])
    probe_names = [p for p in probe_names if p != attack]
    extra_large = large_eps is not None and eps_list[-1] < large_eps
    dev = resolve_device(device) if isinstance(device, str) else device
    model = model.to(dev)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    kwargs = dict(steps=steps, restarts=restarts, step_size=step_size, queries=queries, clamp=clamp,
                  threshold=threshold, generator=generator)

    with contextlib.ExitStack() as stack:
        if has_dual_bn(model):  # deployed models cannot know which inputs are adversarial
            stack.enter_context(bn_route(model, "clean"))
        return _evaluate(model, images, targets, attack, eps_list, kwargs, dev, threshold, clamp, records, probe_names,
                         probe_queries, large_eps, extra_large, tolerance, batch_size, workers, steps, restarts,
                         step_size, queries, seed, callback, cancel)


def _evaluate(model, images, targets, attack, eps_list, kwargs, dev, threshold, clamp, records, probe_names,
              probe_queries, large_eps, extra_large, tolerance, batch_size, workers, steps, restarts, step_size,
              queries, seed, callback, cancel) -> RobustnessReport:
    def predict(x: torch.Tensor) -> torch.Tensor:
        with attack_mode(model), torch.no_grad():
            return model(x).float().cpu()

    t0 = time.perf_counter()
    seconds = {"clean": 0.0, "attack": 0.0, "probes": 0.0, "gradient_check": 0.0}
    total, batches = _batches(images, targets, batch_size, workers)
    all_t, clean, adv = [], [], {e: [] for e in eps_list}
    probe_out: dict[str, dict[float, list]] = {p: {e: [] for e in eps_list} for p in probe_names}
    large: list[torch.Tensor] = []
    zero = nonfinite = 0
    for b, (x, t) in enumerate(batches):
        if cancel is not None and cancel.is_set():
            raise EvaluationCancelled("attack evaluation cancelled")
        x, t = x.to(dev).float(), t.to(dev).float()
        s = time.perf_counter()
        clean.append(predict(x))
        all_t.append(t.cpu())
        seconds["clean"] += time.perf_counter() - s
        s = time.perf_counter()
        z, n = input_gradient_check(model, x)
        zero, nonfinite = zero + z, nonfinite + n
        seconds["gradient_check"] += time.perf_counter() - s
        s = time.perf_counter()
        for e in eps_list:
            adv[e].append(predict(run_attack(model, x, t, attack, e, **kwargs)))
            if cancel is not None and cancel.is_set():
                raise EvaluationCancelled("attack evaluation cancelled")
        if extra_large:
            large.append(predict(run_attack(model, x, t, attack, large_eps, **kwargs)))
        seconds["attack"] += time.perf_counter() - s
        s = time.perf_counter()
        for p in probe_names:
            pk = dict(kwargs, steps=None, restarts=None, step_size=None, queries=probe_queries)
            for e in eps_list:
                probe_out[p][e].append(predict(run_attack(model, x, t, p, e, **pk)))
        seconds["probes"] += time.perf_counter() - s
        if callback is not None:
            callback(EvaluationProgress(b + 1, total, "attack"))

    targets_np = torch.cat(all_t).numpy() if all_t else np.zeros(0)
    clean_np = torch.cat(clean).numpy() if clean else np.zeros(0)
    adv_np = {e: torch.cat(v).numpy() for e, v in adv.items()} if clean else {e: np.zeros(0) for e in eps_list}
    probes_np = {p: {e: torch.cat(v).numpy() for e, v in runs.items()} for p, runs in probe_out.items()} if clean else {}
    n = len(targets_np)
    cases = [_case_info(i, records[i] if records is not None and i < len(records) else None) for i in range(n)]
    settings = {"eps": eps_list, "steps": steps, "restarts": restarts, "step_size": step_size, "queries": queries,
                "clamp": list(clamp) if clamp else None, "probes": probe_names, "probe_queries": probe_queries,
                "large_eps": large_eps, "tolerance": tolerance, "seed": seed, "device": str(dev)}
    report = RobustnessReport(attack, settings, threshold, targets_np, clean_np, eps_list, adv_np, probes_np, cases,
                              zero, nonfinite)
    large_point = None
    if extra_large:
        large_point = (large_eps, _auc(targets_np > 0.5, torch.cat(large).numpy()))
    elif large_eps is not None and eps_list[-1] >= large_eps:
        large_point = (eps_list[-1], report.adversarial(eps_list[-1])["auc"])
    if large_point is not None:
        report.settings["large_eps_auc"] = large_point[1]
    all_logits = [clean_np, *adv_np.values()] + [v for runs in probes_np.values() for v in runs.values()]
    nan_outputs = int(sum((~np.isfinite(v)).sum() for v in all_logits))
    report.warnings = sanity_checks(
        attack=attack,
        clean_auc=report.clean["auc"],
        eps=eps_list,
        adversarial_auc=report.auc_curve()[1],
        probes={p: {e: _auc(targets_np > 0.5, v) for e, v in runs.items()} for p, runs in probes_np.items()},
        large_eps=large_point,
        zero_gradients=zero,
        nan_gradients=nonfinite,
        nan_outputs=nan_outputs,
        n=n,
        tolerance=tolerance,
    )
    seconds["total"] = time.perf_counter() - t0
    report.seconds = {k: round(v, 4) for k, v in seconds.items()}
    if callback is not None:
        callback(EvaluationProgress(total, total, "done"))
    return report
