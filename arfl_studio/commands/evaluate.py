"""``arfl-studio evaluate RUN --data DIR``: external validation of a run's models on another dataset.

Each fold model, each method's fold ensemble (mean logit) and its final model (``run --final``)
score the dataset: AUC with its DeLong 95 % interval, sensitivity / specificity at the stored
threshold and AUC under the run's ``[evaluation]`` attack, per image, breast or patient
(:mod:`arfl_studio.experiments.external`).
"""

from __future__ import annotations

import sys

from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a run's fold models, fold ensembles and final models on another dataset (external validation)",
        description="External validation: every fold model, each method's fold ensemble (mean logit) and final "
        "model of RUN score the labelled dataset DIR, each preprocessed as it trained. Prints AUC with DeLong 95 %% "
        "intervals, sensitivity/specificity at the stored thresholds and the attacked AUC at the run's epsilon.",
    )
    parser.add_argument("run_dir", metavar="RUN", help="run folder (from arfl-studio run)")
    parser.add_argument("--data", metavar="DIR", required=True, help="the labelled dataset to score")
    parser.add_argument("--labels", metavar="FILE", help="labels table for --data (default: found by the layout)")
    parser.add_argument("--layout", default="auto", help="layout of --data (default: detected)")
    parser.add_argument(
        "--unit",
        choices=("image", "breast", "patient"),
        help="AUC per image, breast (mean logit of its views) or patient (max over breasts); default: the run's [evaluation] unit",
    )
    parser.add_argument("--eps", type=float, metavar="E", help="attack epsilon (default: the run's [evaluation] eps)")
    parser.add_argument("--no-attack", action="store_true", help="skip the attacked AUC (faster)")
    parser.add_argument("--method", action="append", metavar="KEY", help="only this method (repeatable)")
    parser.add_argument("--seed", type=int, metavar="S", help="seed folder of a several-seed run (default: the first)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default)")
    parser.add_argument("--cache-dir", metavar="DIR", help="preprocessing cache (default: the run's)")
    parser.add_argument("--json", metavar="PATH", help="write the evaluation document (JSON) here")
    declare_outputs(parser, files=("json",), folders=("cache_dir",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio import atomic
    from arfl_studio.commands.interruption import CANCEL, Interrupted, note
    from arfl_studio.experiments.external import ExternalError, evaluate_external, render_table, scan_external
    from arfl_studio.training.devices import resolve_device
    from arfl_studio.training.methods import SettingError

    if args.eps is not None and not args.eps > 0:
        print(f"error: --eps must be > 0, got {args.eps}", file=sys.stderr)
        return 2
    try:
        records, summary = scan_external(args.data, args.labels, args.layout, cancel=CANCEL)
        print(
            f"{args.data}: {summary['images']} images of {summary['patients']} patients "
            f"({summary.get('label_rule') or 'labels as the layout reads them'})",
            flush=True,
        )
        note("no model scored yet", "nothing was written (the --json is written at the end)")
        doc = evaluate_external(
            args.run_dir,
            records,
            unit=args.unit,
            eps=args.eps,
            attack=not args.no_attack,
            methods=args.method,
            seed=args.seed,
            device=resolve_device(args.device),
            cache_dir=args.cache_dir,
            progress=lambda done, total: _scored(done, total, note),
            cancel=CANCEL,
        )
    except (ExternalError, SettingError, ValueError, OSError) as exc:
        if CANCEL.is_set():
            raise Interrupted from None  # Ctrl-C: the model being scored stopped at its next batch
        print(f"error: {exc}", file=sys.stderr)
        return 1
    doc["data"] = {
        "root": str(args.data),
        "labels": args.labels,
        **{k: summary.get(k) for k in ("layout", "images", "patients", "label_rule", "rejected", "unlabeled", "excluded")},
    }
    print()
    print(render_table(doc))
    if args.json:
        try:
            atomic.write_json(args.json, doc)
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc}", file=sys.stderr)
            return 1
    return 0


def _scored(done: int, total: int, note) -> None:
    note(f"{done} of {total} models scored", "nothing was written (the --json is written at the end)")
    print(f"scored {done}/{total} models", flush=True)
