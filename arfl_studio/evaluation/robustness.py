"""Attack evaluation: clean vs adversarial AUC / accuracy / sensitivity / specificity
over an eps sweep, the cases whose prediction flipped (reproducibly), and sanity checks.

The sweep loops over batches outside and eps inside: each batch is loaded (and
preprocessed) once and its clean forward pass is done once, whatever the number of
eps values; the model is moved to the device once. Progress is reported, and the
cancel flag polled, after every attack step (:mod:`arfl_studio.evaluation.progress`).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from arfl_studio.evaluation.attacks import (
    APGD_LOSSES,
    ATTACKS,
    DEFAULT_QUERIES,
    DEFAULT_RESTARTS,
    DEFAULT_STEPS,
    ENSEMBLE_MEMBERS,
    GRADIENT_FREE,
    attack_parameters,
    run_attack,
)
from arfl_studio.evaluation.progress import (
    GRADIENT_UNITS,
    EvaluationCancelled,
    EvaluationProgress,
    ProgressMeter,
    attack_units,
)
from arfl_studio.evaluation.report import RobustnessReport, sample_size, threshold_metrics
from arfl_studio.evaluation.sanity_budget import DEFAULT_BUDGET, SanityPlan, plan_sanity
from arfl_studio.evaluation.sanity import SPARSE_FRACTION, checks_run, eps_rise_errors, sanity_checks
from arfl_studio.models.dual_bn import bn_route, has_dual_bn
from arfl_studio.training.attacks import attack_mode, project
from arfl_studio.training.devices import resolve_device

__all__ = [
    "EvaluationCancelled",
    "EvaluationProgress",
    "RobustnessReport",
    "evaluate_robustness",
    "input_gradient_stats",
    "sanity_plan",
    "threshold_metrics",
]

LARGE_EPS = 0.5  # pixel space [0, 1]: every image can reach the same mid-grey image
PROBE_QUERIES = 200
PROBES = ("fgsm", "pgd", "square")
DELTA_BUDGET_MB = 256.0  # float16 deltas kept for flipped cases (beyond it: settings only)


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
    from arfl_studio.data.child_processes import loader_worker_init_fn  # workers end when this process is killed

    loader = torch.utils.data.DataLoader(
        images, batch_size=batch_size, shuffle=False, num_workers=workers, worker_init_fn=loader_worker_init_fn() if workers else None
    )
    return len(loader), ((x, torch.as_tensor(t).float()) for x, *rest in loader for t in [rest[0]])


def input_gradient_stats(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per sample: is the logit's input gradient all zero / non-finite, and the fraction of exactly-zero pixels."""
    with attack_mode(model), torch.enable_grad():
        x = x.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(model(x).float().sum(), x)
    flat = grad.reshape(len(x), -1)
    nonfinite = ~torch.isfinite(flat).all(dim=1)
    zero_fraction = (flat == 0).float().mean(dim=1)
    return {"zero": (zero_fraction == 1) & ~nonfinite, "nonfinite": nonfinite, "zero_fraction": zero_fraction}


def _probe_attacks(attack: str) -> list[str]:
    if attack == "fgsm":
        return ["pgd", "square"]
    if attack in GRADIENT_FREE:
        return ["fgsm", "pgd"]
    if attack == "worst":
        return ["fgsm"]  # square is a member already
    return ["fgsm", "square"]


def _probe_subset(n: int | None, probe_images: int | None) -> np.ndarray | None:
    """Evenly spaced image indices for the probes (None: all images)."""
    if probe_images is None or n is None or probe_images >= n:
        return None
    if probe_images < 1:
        raise ValueError(f"probe_images must be >= 1, got {probe_images}")
    return np.unique(np.round(np.linspace(0, n - 1, probe_images)).astype(int))


def sanity_plan(
    attack: str,
    eps: float | Sequence[float],
    images: int,
    *,
    probes: bool | Sequence[str] = True,
    probe_queries: int = PROBE_QUERIES,
    probe_images: int | None = None,
    sanity_budget: float | None = DEFAULT_BUDGET,
    large_eps: float | None = LARGE_EPS,
    steps: int | None = None,
    restarts: int | None = None,
    queries: int | None = None,
    loss: str = "margin",
) -> SanityPlan:
    """The sanity checks :func:`evaluate_robustness` will run with these arguments on ``images``
    images, and their estimated cost relative to the attack (print it before the attack starts)."""
    names = _probe_attacks(attack) if probes is True else list(probes or [])
    return plan_sanity(
        attack=attack,
        eps=sorted({float(e) for e in ([eps] if isinstance(eps, (int, float)) else eps)}),
        images=images,
        probes=[p for p in names if p != attack],
        probe_queries=probe_queries,
        large_attack=None if large_eps is None else ("apgd" if attack == "worst" else attack),
        steps=steps,
        restarts=restarts,
        queries=queries,
        loss=loss,
        probe_images=probe_images,
        budget=sanity_budget,
    )


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
    loss: str = "margin",
    threshold: float = 0.0,
    clamp: tuple[float, float] | None = (0.0, 1.0),
    records: Sequence[Any] | None = None,
    probes: bool | Sequence[str] = True,
    probe_queries: int = PROBE_QUERIES,
    probe_images: int | None = None,
    sanity_budget: float | None = DEFAULT_BUDGET,
    large_eps: float | None = LARGE_EPS,
    tolerance: float = 0.02,
    batch_size: int = 32,
    workers: int = 0,
    device: str | torch.device = "auto",
    seed: int = 0,
    delta_budget_mb: float = DELTA_BUDGET_MB,
    callback: Callable[[EvaluationProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> RobustnessReport:
    """Evaluate ``model`` under ``attack`` at every eps, with sanity checks.

    ``images``: a tensor (N, C, H, W) in [0, 1] with ``targets`` (N,) in {0, 1}, or a
    Dataset yielding (image, label). ``records`` (optional, one per sample: ImageRecord,
    dict or str) name the flipped cases. ``loss``: APGD's loss (margin, ce or both).

    Sanity checks (each can be chosen, with its budget): ``probes`` — reference attacks
    run at the same eps (True: FGSM and a Square probe of ``probe_queries`` queries for
    white-box attacks; FGSM and PGD for Square; FGSM for the ``worst`` ensemble, whose
    members are compared with each other; a list picks from fgsm/pgd/square; False for
    none), on ``probe_images`` evenly spaced images (None: all); ``large_eps`` — the
    attack (APGD for ``worst``) is also run at this eps on the probe images to check that
    it breaks the model (None: skip). The input-gradient check (one backward pass) always runs.
    Without ``probe_images``, ``sanity_budget`` chooses them: the checks' estimated cost is
    at most that multiple of the requested attack's (:mod:`sanity_budget`; None: all images).
    The plan and the measured seconds are in ``report.settings["sanity_plan"]`` and ``report.seconds``.

    ``cancel`` is polled after every attack step: :class:`EvaluationCancelled` is raised
    within one step of it being set. ``callback`` receives :class:`EvaluationProgress`
    events (a few per second) naming what runs, with an ETA.
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    if loss not in APGD_LOSSES:
        raise ValueError(f"loss must be one of {APGD_LOSSES}, got {loss!r}")
    eps_list = sorted({float(e) for e in ([eps] if isinstance(eps, (int, float)) else eps)})
    if not eps_list or any(not (e >= 0) for e in eps_list):
        raise ValueError(f"eps must be one or more values >= 0, got {eps}")
    probe_names = _probe_attacks(attack) if probes is True else list(probes or [])
    unknown = [p for p in probe_names if p not in PROBES]
    if unknown:
        raise ValueError(f"probes must be chosen from {PROBES}, got {unknown}")
    probe_names = [p for p in probe_names if p != attack]
    if large_eps is not None and not large_eps > 0:
        raise ValueError(f"large_eps must be > 0 (or None to skip), got {large_eps}")
    dev = resolve_device(device) if isinstance(device, str) else device
    model = model.to(dev)
    n_images = len(images) if hasattr(images, "__len__") else None
    plan = (
        None
        if n_images is None
        else sanity_plan(
            attack,
            eps_list,
            n_images,
            probes=probe_names,
            probe_queries=probe_queries,
            probe_images=probe_images,
            sanity_budget=sanity_budget,
            large_eps=large_eps,
            steps=steps,
            restarts=restarts,
            queries=queries,
            loss=loss,
        )
    )
    if plan is not None and n_images is not None and plan.probe_images < n_images:
        probe_images = plan.probe_images
    settings = {
        "eps": eps_list,
        "steps": steps or DEFAULT_STEPS.get(attack),
        "restarts": restarts or DEFAULT_RESTARTS.get(attack),
        "step_size": step_size,
        "loss": loss if attack == "apgd" else "margin",
        "queries": (queries or DEFAULT_QUERIES) if attack in ("square", "worst") else None,
        "clamp": list(clamp) if clamp else None,
        "probes": probe_names,
        "probe_queries": probe_queries,
        "probe_images": probe_images,
        "large_eps": large_eps,
        "tolerance": tolerance,
        "seed": seed,
        "device": str(dev),
        "batch_size": batch_size,
        "sanity_plan": None if plan is None else plan.to_dict(),
    }
    # every parameter as used, per eps (the JSON alone reproduces the attack: report.replay_arguments)
    settings["parameters"] = {
        f"{e:g}": attack_parameters(
            attack, e, steps=steps, restarts=restarts, step_size=step_size, queries=queries, loss=str(settings["loss"])
        )
        for e in eps_list
        if e > 0
    }
    settings["probe_parameters"] = {p: attack_parameters(p, eps_list[-1], queries=probe_queries) for p in probe_names}
    with contextlib.ExitStack() as stack:
        if has_dual_bn(model):  # deployed models cannot know which inputs are adversarial
            stack.enter_context(bn_route(model, "clean"))
        return _Evaluation(model, attack, eps_list, settings, threshold, clamp, dev, probe_names, delta_budget_mb, callback, cancel).run(
            images, targets, records, workers
        )


class _Evaluation:
    def __init__(self, model, attack, eps_list, settings, threshold, clamp, dev, probe_names, delta_budget_mb, callback, cancel):
        self.model, self.attack, self.eps_list, self.settings = model, attack, eps_list, settings
        self.threshold, self.clamp, self.dev, self.probe_names = threshold, clamp, dev, probe_names
        self.delta_budget = int(delta_budget_mb * 2**20)
        self.callback, self.cancel = callback, cancel
        self.generator = torch.Generator(device="cpu").manual_seed(settings["seed"])
        self.large_attack = "apgd" if attack == "worst" else attack

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with attack_mode(self.model), torch.no_grad():
            return self.model(x).float().cpu()

    def attack_kwargs(self, name: str, probe: bool = False) -> dict[str, Any]:
        s = self.settings
        if probe:
            return dict(queries=s["probe_queries"], clamp=self.clamp, threshold=self.threshold, generator=self.generator)
        restarts = s["restarts"] if name == self.attack else DEFAULT_RESTARTS.get(name)
        return dict(
            steps=s["steps"],
            restarts=restarts,
            step_size=s["step_size"],
            queries=s["queries"],
            loss=s["loss"],
            clamp=self.clamp,
            threshold=self.threshold,
            generator=self.generator,
        )

    def units(self, name: str, probe: bool = False) -> tuple[int, dict[str, float] | None]:
        s = self.settings
        if probe:
            return attack_units(name, DEFAULT_STEPS.get(name, 1), 1, s["probe_queries"]), None
        steps, queries = s["steps"] or 1, s["queries"] or DEFAULT_QUERIES
        restarts = (s["restarts"] if name == self.attack else DEFAULT_RESTARTS.get(name)) or 1
        if name == "worst":
            parts: dict[str, float] = {m: attack_units(m, steps, restarts if m == "pgd-strong" else 1, queries) for m in ENSEMBLE_MEMBERS}
            return attack_units(name, steps, restarts, queries), parts
        return attack_units(name, steps, restarts, queries, s["loss"]), None

    def total_units(self, n_batches: int, batch_size: int, n: int | None, subset: np.ndarray | None) -> int:
        main = sum(self.units(self.attack)[0] for e in self.eps_list if e > 0)
        probe = sum(self.units(p, probe=True)[0] for p in self.probe_names for e in self.eps_list if e > 0)
        if self.settings["large_eps"] is not None:
            probe += self.units(self.large_attack)[0]
        probed_batches = n_batches if subset is None else len({int(i) // batch_size for i in subset})
        return n_batches * (1 + GRADIENT_UNITS + main) + probed_batches * probe

    def run_one(self, meter: ProgressMeter, name: str, x, t, e: float, probe: bool = False, members=None, sanity: bool = False):
        """One attack call; ``probe``: a reference attack (probe budget); ``sanity``: part of the checks."""
        units, parts = self.units(name, probe)
        sanity = sanity or probe
        meter.begin(f"{'sanity: ' if sanity else ''}{name} eps={e:g}", units, "sanity" if sanity else "attack", parts)
        adv = run_attack(self.model, x, t, name, e, on_step=meter.step, members_out=members, **self.attack_kwargs(name, probe))
        meter.end()
        return adv

    def run(self, images, targets, records, workers: int) -> RobustnessReport:
        t0 = time.perf_counter()
        seconds = {"clean": 0.0, "attack": 0.0, "sanity": 0.0, "gradient_check": 0.0}
        bs = self.settings["batch_size"]
        n_total = len(images) if hasattr(images, "__len__") else None
        subset = _probe_subset(n_total, self.settings["probe_images"])
        in_subset = None if subset is None else set(subset.tolist())
        n_batches, batches = _batches(images, targets, bs, workers)
        meter = ProgressMeter(self.total_units(n_batches, bs, n_total, subset), n_batches, self.callback, self.cancel)
        all_t, clean = [], []
        adv: dict[float, list[Any]] = {e: [] for e in self.eps_list}
        members: dict[str, dict[float, list]] = (
            {m: {e: [] for e in self.eps_list} for m in ENSEMBLE_MEMBERS} if self.attack == "worst" else {}
        )
        probe_out: dict[str, dict[float, list]] = {p: {e: [] for e in self.eps_list} for p in self.probe_names}
        large: list[torch.Tensor] = []
        grey: list[torch.Tensor] = []
        grads: dict[str, list] = {"zero": [], "nonfinite": [], "zero_fraction": []}
        deltas: dict[tuple[float, int], np.ndarray] = {}
        kept_bytes, offset = 0, 0
        for b, (x, t) in enumerate(batches):
            meter.batch = b + 1
            meter.check_cancel()
            x, t = x.to(self.dev).float(), t.to(self.dev).float()
            s = time.perf_counter()
            z_clean = self.predict(x)
            clean.append(z_clean)
            all_t.append(t.cpu())
            seconds["clean"] += time.perf_counter() - s
            s = time.perf_counter()
            for k, v in input_gradient_stats(self.model, x).items():
                grads[k].append(v.cpu())
            seconds["gradient_check"] += time.perf_counter() - s
            s = time.perf_counter()
            for e in self.eps_list:
                if e == 0:
                    adv[e].append(z_clean.clone())
                    for m in members:
                        members[m][e].append(z_clean.clone())
                    continue
                out: dict[str, torch.Tensor] | None = {} if members else None
                x_adv = self.run_one(meter, self.attack, x, t, e, members=out)
                # the report's numbers are computed on the float16 delta it keeps: a viewer rebuilds them exactly
                delta = (x_adv - x).half()
                x_adv = project(x + delta.float(), x, e, self.clamp)
                z_adv = self.predict(x_adv)
                adv[e].append(z_adv)
                for m, x_m in (out or {}).items():
                    members[m][e].append(self.predict(x_m))
                flips = torch.nonzero((z_clean > self.threshold) != (z_adv > self.threshold)).reshape(-1).tolist()
                for i in flips:
                    d = delta[i].cpu().numpy()
                    if kept_bytes + d.nbytes <= self.delta_budget:
                        deltas[(e, offset + i)] = d
                        kept_bytes += d.nbytes
            seconds["attack"] += time.perf_counter() - s
            s = time.perf_counter()
            pick = list(range(len(x))) if in_subset is None else [i for i in range(len(x)) if offset + i in in_subset]
            if pick:
                xs, ts = x[pick], t[pick]
                for p in self.probe_names:
                    for e in self.eps_list:
                        probe_out[p][e].append(self.predict(self.run_one(meter, p, xs, ts, e, probe=True)) if e > 0 else self.predict(xs))
                if self.settings["large_eps"] is not None:
                    if not grey:  # every image can reach mid-grey at eps >= 0.5 in [0, 1]: the trivial attack
                        grey.append(self.predict(torch.full_like(x[:1], 0.5)))
                    large.append(self.predict(self.run_one(meter, self.large_attack, xs, ts, self.settings["large_eps"], sanity=True)))
            seconds["sanity"] += time.perf_counter() - s
            offset += len(x)
            meter.finish_batch()

        report = self._report(all_t, clean, adv, members, probe_out, large, grey, grads, deltas, subset, records)
        seconds["total"] = time.perf_counter() - t0
        report.seconds = {k: round(v, 4) for k, v in seconds.items()}
        meter.done()
        return report

    def _report(self, all_t, clean, adv, members, probe_out, large, grey, grads, deltas, subset, records):
        cat = lambda v: torch.cat(v).numpy() if v else np.zeros(0)  # noqa: E731
        targets = cat(all_t)
        n = len(targets)
        clean_np = cat(clean)
        adv_np = {e: cat(v) for e, v in adv.items()}
        members_np = {m: {e: cat(v) for e, v in r.items()} for m, r in members.items()}
        probes_np = {p: {e: cat(v) for e, v in r.items()} for p, r in probe_out.items()}
        cases = [_case_info(i, records[i] if records is not None and i < len(records) else None) for i in range(n)]
        zero_fraction = cat(grads["zero_fraction"])
        zero, nonfinite = int(cat(grads["zero"]).sum()), int(cat(grads["nonfinite"]).sum())
        sparse = int((zero_fraction > SPARSE_FRACTION).sum())
        gradient_stats = {
            "zero_pixel_fraction_mean": float(zero_fraction.mean()) if n else 0.0,
            "zero_pixel_fraction_max": float(zero_fraction.max()) if n else 0.0,
            "sparse_fraction": SPARSE_FRACTION,
            "images_mostly_zero": sparse,
            "images_mostly_zero_fraction": sparse / n if n else 0.0,
            "images_over_90_percent_zero": int((zero_fraction > 0.9).sum()),
        }
        report = RobustnessReport(
            self.attack,
            self.settings,
            self.threshold,
            targets,
            clean_np,
            self.eps_list,
            adv_np,
            probes_np,
            cases,
            zero,
            nonfinite,
            members=members_np,
            probe_indices=subset,
            gradient_stats=gradient_stats,
            deltas=deltas,
        )
        t_probe = targets if subset is None else targets[subset]
        metrics = lambda t, z: threshold_metrics(t, z, self.threshold)  # noqa: E731
        if large:
            big = metrics(t_probe, cat(large))
            report.large_eps_check = {
                "eps": self.settings["large_eps"],
                "attack": self.large_attack,
                "auc": big["auc"],
                "accuracy": big["accuracy"],
                **sample_size(t_probe, cat(large)),
                "trivial_accuracy": None,
            }
            if grey and self.clamp is not None and tuple(self.clamp) == (0.0, 1.0) and self.settings["large_eps"] >= 0.5:
                # accuracy when every image is mapped to mid-grey: what any attack at this eps can reach
                grey_positive = bool(grey[0].item() > self.threshold)
                report.large_eps_check["trivial_accuracy"] = float(np.mean((t_probe > 0.5) == grey_positive))
        report.checks = checks_run(self.attack, probes_np, members_np, report.large_eps_check)
        all_logits = [clean_np, *adv_np.values()] + [v for r in probes_np.values() for v in r.values()]
        report.warnings = sanity_checks(
            attack=self.attack,
            clean=report.clean,
            adversarial={e: report.adversarial(e) for e in self.eps_list},
            reference={e: metrics(t_probe, v if subset is None else v[subset]) for e, v in adv_np.items()},
            probes={p: {e: metrics(t_probe, v) for e, v in r.items()} for p, r in probes_np.items()},
            members={m: {e: metrics(targets, v) for e, v in r.items()} for m, r in members_np.items()},
            large_eps=report.large_eps_check,
            gradients={
                "zero_images": zero,
                "nan_images": nonfinite,
                "sparse_images": sparse,
                "sparse_fraction": SPARSE_FRACTION,
                "mean_zero_fraction": gradient_stats["zero_pixel_fraction_mean"],
            },
            nan_outputs=int(sum((~np.isfinite(v)).sum() for v in all_logits)),
            n=n,
            n_reference=len(t_probe),
            tolerance=self.settings["tolerance"],
            rise_se=eps_rise_errors(targets, {0.0: clean_np, **adv_np}, self.threshold),
        )
        return report
