"""``arfl-studio figure RESULTS_DIR --kind ratio|lambda|epsilon --out PATH``: Figures 4, 6, 7."""

from __future__ import annotations

import sys

from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "figure",
        help="draw AUC against r / lambda / eps_1 from a sweep run (PNG, SVG or PDF)",
        description="Mean +/- std (over folds) of the standard and adversarial AUC along one swept axis, "
        "as in the paper's Figures 4 (ratio), 6 (lambda) and 7 (epsilon).",
    )
    parser.add_argument("dir", metavar="RESULTS_DIR", help="run folder of a sweep (or its results.json)")
    parser.add_argument("--kind", choices=["ratio", "lambda", "epsilon"], required=True)
    parser.add_argument("--out", metavar="PATH", required=True, help="image file: .png, .svg or .pdf")
    parser.add_argument("--json", metavar="PATH", help="write the plotted points as JSON")
    declare_outputs(parser, files=("json", "out"))
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio import atomic
    from arfl_studio.experiments.figures import KINDS, sweep_figure, sweep_series
    from arfl_studio.experiments.results import load_results

    try:
        results = load_results(args.dir)
        path = sweep_figure(results, args.kind, args.out)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    if args.json:
        axis = KINDS[args.kind]
        points = [
            {
                "key": m["key"],
                axis: m["params"][axis],
                "params": m["params"],
                "standard_auc": m["standard_auc"],
                "adversarial_auc": m["adversarial_auc"],
            }
            for group in sweep_series(results, args.kind).values()
            for m in group
        ]
        atomic.write_json(args.json, {"kind": args.kind, "axis": axis, "points": points, "figure": str(path)})
    return 0
