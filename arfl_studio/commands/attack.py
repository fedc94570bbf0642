"""``arfl-studio attack RUN_OR_CHECKPOINT``: standard vs adversarial AUC, accuracy,
sensitivity and specificity at the model's threshold over an eps sweep, the cases
whose prediction flipped, and sanity checks against gradient masking.

RUN_OR_CHECKPOINT is a checkpoint ``.pt`` (with its ``.json`` spec beside it; images
from ``--data DIR`` or ``--demo``) or a run folder (each method's fold models on
their own held-out fold; ``--method``/``--fold`` select).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from arfl_studio.data.datasets.layout_names import LAYOUTS
from arfl_studio.atomic import write_json
from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def _eps_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in str(text).replace(" ", "").split(",") if v]
    except ValueError:
        raise SystemExit(f"error: --eps must be numbers separated by commas, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise SystemExit(f"error: --eps values must be >= 0, got {text!r}")
    return values


def _size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in str(text).lower().replace("x", ",").split(",") if p]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise SystemExit(f"error: --size must be N or ROWSxCOLS, got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def requested_preprocess(args) -> dict:
    """The preprocessing flags given explicitly (a model's own record fills the rest)."""
    asked: dict = {}
    if args.size is not None:
        asked["size"] = _size(args.size)
    if args.crop is not None:
        asked["crop"] = args.crop
    if args.no_orient:
        asked["orient"] = False
    return asked


def add_data_arguments(parser) -> None:
    """Image source and preprocessing flags (shared with ``saliency``)."""
    parser.add_argument(
        "--size",
        help="preprocessed size, N or ROWSxCOLS (default: what the model was trained on, "
        "else 224); refused when it differs from the model's recorded input",
    )
    parser.add_argument(
        "--crop",
        choices=["breast", "otsu", "threshold", "none"],
        help="breast crop (default: the model's own, else breast); refused when it differs from it",
    )
    parser.add_argument("--no-orient", action="store_true", help="do not flip breasts to a common side (only for a model trained that way)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "attack",
        help="attack a trained model: clean vs adversarial AUC over eps, flipped cases, sanity checks",
        description="Evaluate a checkpoint (with --data/--demo) or a run folder under an L-inf attack.",
    )
    parser.add_argument("target", metavar="RUN_OR_CHECKPOINT", help="checkpoint .pt (spec .json beside it) or run folder")
    parser.add_argument("--data", metavar="DIR", help="dataset folder to evaluate a checkpoint on")
    parser.add_argument("--demo", action="store_true", help="evaluate a checkpoint on the built-in demo dataset")
    parser.add_argument("--labels", metavar="FILE", help="labels table for --data")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="auto")
    parser.add_argument("--cache-dir", metavar="DIR", help="preprocessed-image cache")
    parser.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N images")
    parser.add_argument("--method", action="append", metavar="KEY", help="run folder: method key(s) to evaluate")
    parser.add_argument("--fold", type=int, action="append", metavar="K", help="run folder: fold(s) to evaluate")
    parser.add_argument(
        "--attack",
        choices=["fgsm", "pgd", "pgd-strong", "apgd", "square", "worst"],
        default="pgd",
        help="worst: pgd-strong + apgd (margin) + square, each image's worst case",
    )
    parser.add_argument("--eps", default="1e-4", help="radius or comma-separated sweep, e.g. 1e-4,1e-3,1e-2,1e-1")
    parser.add_argument("--steps", type=int, help="iterations (pgd 10, pgd-strong/apgd/worst 100 by default)")
    parser.add_argument("--restarts", type=int, help="random restarts (pgd 1, pgd-strong 5, apgd 1, worst's pgd 5)")
    parser.add_argument(
        "--loss",
        choices=["margin", "ce", "both"],
        default="margin",
        help="apgd loss: the logit margin (default), BCE (AutoAttack's APGD-CE) or both (worse case)",
    )
    parser.add_argument("--step-size", type=float, help="pgd/pgd-strong step size (default 2.5 eps / steps)")
    parser.add_argument(
        "--queries",
        type=int,
        help="square/worst: query budget (default 1000; worst then gives the images still unbroken at least AutoAttack's 5000 more)",
    )
    parser.add_argument("--threshold", type=float, help="decision threshold as a logit (default: checkpoint's, else 0)")
    parser.add_argument("--no-probes", action="store_true", help="skip the reference attacks of the sanity checks")
    parser.add_argument(
        "--probes",
        metavar="LIST",
        help="reference attacks of the sanity checks, comma-separated from fgsm,pgd,square "
        "(default: fgsm,square; fgsm,pgd for square; fgsm for worst)",
    )
    parser.add_argument("--probe-queries", type=int, default=200, help="queries of the Square probe (default 200)")
    parser.add_argument(
        "--probe-images",
        type=int,
        metavar="N",
        help="run the sanity-check attacks on N evenly spaced images (default: chosen so the "
        "checks cost at most the attack; see --full-sanity)",
    )
    parser.add_argument(
        "--full-sanity",
        action="store_true",
        help="run the sanity checks on every image (default: on as many evenly spaced images as keep "
        "their estimated cost within the requested attack's; the estimate is printed first)",
    )
    parser.add_argument("--large-eps", type=float, default=0.5, help="eps of the 'breaks at large eps' check (default 0.5; 0: off)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show-flipped", type=int, default=10, metavar="N", help="print at most N flipped cases")
    add_data_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    declare_outputs(parser, files=("json",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def checkpoint_threshold(checkpoint: Path) -> float | None:
    """A decision threshold (logit) stored beside a checkpoint, if any."""
    meta = checkpoint.with_suffix(".json")
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in ("threshold_logit", "threshold"):
        if isinstance(data.get(key), (int, float)):
            return float(data[key])
    return None


def preprocess_settings(args, spec, checkpoint: Path):
    """The preprocessing ``checkpoint`` was trained on (its model.json, else its run's config.toml,
    else the flags); an explicit flag that conflicts with the record is refused."""
    from arfl_studio.experiments import run_access

    return run_access.model_preprocess(checkpoint, spec.in_channels, requested_preprocess(args))


def _scan_records(args) -> list:
    from arfl_studio.commands.interruption import CANCEL, Interrupted, stop_if_cancelled
    from arfl_studio.data import ensure_demo_dataset, scan_dataset
    from arfl_studio.data.demo.dataset import GenerationCancelled

    try:
        root = ensure_demo_dataset(cancel=CANCEL) if args.demo else args.data
    except GenerationCancelled:
        raise Interrupted from None
    result = scan_dataset(root, labels=args.labels, layout=args.layout, cancel=CANCEL)
    stop_if_cancelled()
    records = list(result.images)
    if not records:
        raise SystemExit(f"error: no labelled images found under {root}")
    return records[: args.limit] if args.limit else records


def _evaluate(model, dataset, records, args, threshold: float, finished: int = 0):
    from arfl_studio.evaluation import evaluate_robustness
    from arfl_studio.evaluation.robustness import sanity_plan

    from arfl_studio.commands.interruption import CANCEL, Interrupted, note, stop_if_cancelled
    from arfl_studio.evaluation.progress import EvaluationCancelled

    def progress(event) -> None:
        note(
            f"{finished} {'model evaluated' if finished == 1 else 'models evaluated'}, the current one {100 * event.fraction:.0f}% done",
            "nothing was written (the --json is written at the end)",
        )
        if event.stage != "done" and sys.stderr.isatty():
            eta = f", ETA {event.eta_s:.0f} s" if event.eta_s is not None else ""
            print(f"\r  {100 * event.fraction:3.0f}% {event.message}{eta}\033[K", end="", file=sys.stderr, flush=True)

    checks = dict(
        probes=_probes(args),
        probe_queries=args.probe_queries,
        probe_images=args.probe_images,
        sanity_budget=None if args.full_sanity else 1.0,
        large_eps=args.large_eps or None,
        steps=args.steps,
        restarts=args.restarts,
        queries=args.queries,
        loss=args.loss,
    )
    plan = sanity_plan(args.attack, _eps_list(args.eps), len(dataset), **checks)
    print(
        f"  {plan.describe()}"
        + ("" if args.full_sanity or plan.probe_images == plan.images else "; --full-sanity runs them on every image")
    )
    stop_if_cancelled()  # Ctrl-C while the images were scanned or loaded
    try:
        report = evaluate_robustness(
            model,
            dataset,
            attack=args.attack,
            eps=_eps_list(args.eps),
            step_size=args.step_size,
            threshold=threshold,
            records=records,
            batch_size=args.batch_size,
            device=args.device,
            seed=args.seed,
            callback=progress,
            cancel=CANCEL,
            **checks,
        )
    except EvaluationCancelled:
        raise Interrupted from None
    if sys.stderr.isatty():
        print(file=sys.stderr)
    seconds = report.seconds
    print(
        f"  measured: attack {seconds.get('attack', 0):.1f} s, sanity checks {seconds.get('sanity', 0):.1f} s "
        f"+ gradient check {seconds.get('gradient_check', 0):.1f} s "
        f"({(seconds.get('sanity', 0) + seconds.get('gradient_check', 0)) / max(seconds.get('attack', 0), 1e-9):.2f}x"
        " the attack)"
    )
    return report


def _probes(args):
    if args.no_probes:
        return False
    if args.probes is None:
        return True
    return [p for p in args.probes.replace(" ", "").split(",") if p]


def _print(report, title: str, show: int) -> None:
    print(title)
    print(report.table())
    for e in report.eps:
        flips = report.flipped(e)
        if not flips:
            print(f"  nothing flipped at eps={e:g}: {report.shift_summary(e)['empty_reason']}")
        elif show:
            print(f"  flipped at eps={e:g}: {len(flips)}")
            for case in flips[:show]:
                name = case.get("id", case["index"])
                print(f"    #{case['index']} {name} label {case['label']}: p {case['clean_prob']:.3f} -> {case['adversarial_prob']:.3f}")


def _checkpoint(args, path: Path) -> dict[str, Any]:
    from arfl_studio.data import MammogramDataset
    from arfl_studio.experiments import run_access
    from arfl_studio.models.registry import load_checkpoint

    if not (args.data or args.demo):
        raise SystemExit("error: a checkpoint needs --data DIR (or --demo) with the images to attack")
    model, spec = load_checkpoint(path)
    run_dir = run_access.run_dir_of(path)
    config = run_access.run_config(run_dir) if run_dir is not None else None
    settings = preprocess_settings(args, spec, path)
    records = _scan_records(args)
    cache = args.cache_dir or (config.data.cache_dir if config is not None else None)
    dataset = MammogramDataset(records, settings, cache_dir=cache)
    threshold = args.threshold if args.threshold is not None else (checkpoint_threshold(path) or 0.0)
    report = _evaluate(model, dataset, records, args, threshold)
    _print(report, f"{path} on {len(records)} images ({settings.size[0]}x{settings.size[1]})", args.show_flipped)
    return {"kind": "checkpoint", "checkpoint": str(path), "preprocess": settings.to_dict(), "model": spec.to_dict(), **report.to_json()}


def _run_folder(args, run_dir: Path) -> dict[str, Any]:
    from arfl_studio.experiments import run_access

    config = run_access.run_config(run_dir)
    keys = args.method or [m.key for m in config.methods]
    folds = args.fold if args.fold is not None else list(range(len(run_access.splits_document(run_dir)["test_indices"])))
    evaluations: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    for key in keys:
        finished = run_access.fold_models(run_dir, key)
        for fold in folds:
            models = [m for m in finished if m.fold == fold]
            if not models:
                print(f"skip {key} fold {fold}: no model.pt (not finished)")
                continue
            for which in models:  # every seed of a several-seed run
                model, _spec, test, dataset = run_access.held_out(
                    run_dir, key, fold, which.seed, args.limit, args.cache_dir, requested_preprocess(args)
                )
                threshold = (
                    args.threshold
                    if args.threshold is not None
                    else (checkpoint_threshold(run_access.fold_checkpoint(run_dir, key, fold, which.seed)) or 0.0)
                )
                report = _evaluate(model, dataset, test, args, threshold, len(evaluations))
                _print(report, f"{which.label()}: {len(test)} held-out images", args.show_flipped)
                evaluations.append({"method_key": key, "fold": fold, "seed": which.seed, **report.to_json()})
                summary.setdefault(key, []).append(report)
    if not evaluations:
        raise SystemExit(f"error: no finished fold models under {run_dir} for methods {keys}")
    table = {}
    for key, reports in summary.items():
        eps = reports[0].eps
        table[key] = {
            "folds": len(reports),
            "clean_auc_mean": _nanmean([r.clean["auc"] for r in reports]),
            "adversarial_auc_mean": {f"{e:g}": _nanmean([r.adversarial(e)["auc"] for r in reports]) for e in eps},
            "warnings": sorted({w.name for r in reports for w in r.warnings}),
        }
    return {"kind": "run", "run_dir": str(run_dir), "evaluations": evaluations, "summary": table}


def _nanmean(values) -> float | None:
    """Mean over the defined values (None when none is: JSON null, not NaN)."""
    import math

    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def run(args) -> int:
    from arfl_studio.commands.interruption import note

    note("0 models evaluated", "nothing was written (the --json is written at the end)")
    target = Path(args.target)
    try:
        if target.is_dir():
            if not (target / "config.toml").is_file():
                print(f"error: {target} is not a run folder (no config.toml)", file=sys.stderr)
                return 2
            result = _run_folder(args, target)
        elif target.is_file():
            result = _checkpoint(args, target)
        else:
            print(f"error: {target} does not exist", file=sys.stderr)
            return 2
    except (ValueError, OSError) as err:  # CheckpointError and PreprocessConflict are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        write_json(args.json, result)  # the atomic writer makes it valid JSON (no NaN / Infinity)
        print(f"JSON written to {args.json}")
    return 0
