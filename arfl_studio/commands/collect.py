"""``arfl-studio collect DIR``: merge the folds (and sweep points) of a run folder into results.json."""

from __future__ import annotations

import sys

from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="merge the finished folds of a run folder (e.g. from cluster jobs) into results.json",
        description="Read every <method>/fold_<k>/manifest.json of DIR, compute mean ± std AUCs and "
        "Mann-Whitney U p-values, and write DIR/results.json.",
    )
    parser.add_argument("dir", metavar="DIR", help="run folder")
    parser.add_argument("--json", metavar="PATH", help="also write the results document here")
    declare_outputs(parser, files=("json",))
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio import atomic
    from arfl_studio.experiments.results import collect
    from arfl_studio.experiments.result_tables import render_table

    try:
        results = collect(args.dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(render_table(results, "md"))
    for entry in results.get("skipped_manifests", []):
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    missing = {m["key"]: sorted(set(range(results["folds"])) - set(m["folds_finished"])) for m in results["methods"]}
    missing = {k: v for k, v in missing.items() if v}
    if missing:
        print("unfinished folds: " + "; ".join(f"{k}: {v}" for k, v in missing.items()))
    if args.json:
        atomic.write_json(args.json, results)
    return 0
