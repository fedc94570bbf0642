"""``arfl-studio table RESULTS_DIR --format csv|xlsx|md|tex``: the comparison table of Tables 2-3."""

from __future__ import annotations

import sys
from pathlib import Path

from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "table",
        help="export a run's comparison table (mean ± std AUCs, Mann-Whitney U p-values)",
        description="Per method: standard AUC, adversarial AUC and their mean over folds, as in the paper's "
        "Tables 2-3, with two-sided Mann-Whitney U p-values against row F (or the first row).",
    )
    parser.add_argument("dir", metavar="RESULTS_DIR", help="run folder (or a results.json)")
    parser.add_argument(
        "--format", choices=["csv", "xlsx", "md", "tex"], default=None, help="output format (default: from --out's suffix, else md)"
    )
    parser.add_argument("--out", metavar="PATH", help="write the table here (default: print it; xlsx needs --out)")
    parser.add_argument("--json", metavar="PATH", help="write the table rows as JSON")
    declare_outputs(parser, files=("json", "out"))
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio import atomic
    from arfl_studio.experiments.results import comparison_rows, load_results
    from arfl_studio.experiments.result_tables import export_table, render_table

    fmt = args.format or (Path(args.out).suffix.lstrip(".").lower() if args.out else "md")
    if fmt not in ("csv", "xlsx", "md", "tex"):
        print(f"error: unknown table format {fmt!r}; use --format csv|xlsx|md|tex", file=sys.stderr)
        return 2
    try:
        results = load_results(args.dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for entry in results.get("skipped_manifests", []):
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    if args.out:
        path = export_table(results, args.out, fmt)
        print(f"wrote {path}")
    elif fmt == "xlsx":
        print("error: --format xlsx needs --out PATH", file=sys.stderr)
        return 2
    else:
        print(render_table(results, fmt))
    if args.json:
        atomic.write_json(args.json, {"reference": results.get("reference"), "rows": comparison_rows(results)})
    return 0
