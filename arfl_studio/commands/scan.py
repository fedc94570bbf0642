"""``arfl-studio scan DIR``: which images of a dataset are usable, their labels, and what is wrong.

Never stops on a bad file; never prints or writes PatientName, birth date or other PHI
(only the dataset's own pseudonymous patient IDs, and only in the JSON).
"""

from __future__ import annotations

import os
import sys

from arfl_studio.atomic import write_json
from arfl_studio.data.datasets.layout_names import LAYOUTS
from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="scan a mammogram dataset folder (CMMD, CBIS-DDSM, VinDr-Mammo, INbreast, RSNA, folder + labels CSV, folder-per-class)",
        description="Read the DICOM headers under DIR, join them to the labels and report usable, rejected and unlabeled images.",
    )
    parser.add_argument("dir", metavar="DIR", help="dataset folder")
    parser.add_argument("--labels", metavar="FILE", help="CMMD clinical table (xlsx/CSV) or a labels CSV")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="auto", help="force a layout (default: detected)")
    parser.add_argument(
        "--cmmd-missing",
        choices=["unlabeled", "negative"],
        help="CMMD: a breast with no clinical-table row is left unlabeled (default) or used as negative",
    )
    parser.add_argument("--birads-positive", metavar="LIST", help="VinDr/INbreast: positive BI-RADS (default 4,4a,4b,4c,5,6)")
    parser.add_argument("--birads-negative", metavar="LIST", help="VinDr/INbreast: negative BI-RADS (default 1,2)")
    parser.add_argument("--path-column", default="path", help="labels CSV: column with the image path")
    parser.add_argument("--patient-column", default="patient", help="labels CSV: column with the patient ID")
    parser.add_argument("--label-column", default="label", help="labels CSV: column with the label")
    parser.add_argument("--workers", type=int, default=1, help="processes reading headers / decoding (default 1)")
    parser.add_argument(
        "--no-scan-cache",
        action="store_true",
        help="read every header again and keep none (default: unchanged files' headers come from the scan cache "
        "in the user data folder, so an interrupted scan resumes)",
    )
    parser.add_argument("--verify", action="store_true", help="decode every usable image (slower) so a run never meets an undecodable file")
    parser.add_argument(
        "--include-non-mammograms", action="store_true", help="keep images whose header does not show a mammogram (CT, MR, ...)"
    )
    parser.add_argument("--include-for-processing", action="store_true", help="keep FOR PROCESSING images (raw detector data)")
    parser.add_argument(
        "--frame", type=int, metavar="N", help="use frame N (1 = first) of multi-frame images; without it they are rejected"
    )
    parser.add_argument(
        "--shareable-paths", action="store_true", help="in --json, replace date/UID path components with keyed hashes (for sharing)"
    )
    parser.add_argument("--show", type=int, default=10, metavar="N", help="list at most N rejected/unlabeled files")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    declare_outputs(parser, files=("json",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio.commands.interruption import CANCEL, Interrupted
    from arfl_studio.commands.interruption import note as note_progress
    from arfl_studio.data.datasets.layouts import LayoutError, scan_dataset

    stage = {"name": "headers read", "started": False}

    def progress(done: int, total: int) -> None:  # --verify counts again from 0 for the decode pass
        if done == 0 and stage["started"]:
            stage["name"] = "files decoded (--verify; every header was read)"
        stage["started"] = True
        note_progress(
            f"{done} of {total} {stage['name']}",
            "the headers read so far are kept in the scan cache: re-run the same command to resume"
            if stage["name"] == "headers read" and not args.no_scan_cache
            else "nothing was written (the scan writes only its --json, at the end)",
        )

    try:
        result = scan_dataset(
            args.dir,
            progress=progress,
            labels=args.labels,
            layout=args.layout,
            workers=max(1, args.workers),
            path_column=args.path_column,
            patient_column=args.patient_column,
            label_column=args.label_column,
            include_non_mammograms=args.include_non_mammograms,
            include_for_processing=args.include_for_processing,
            frame=args.frame,
            verify=args.verify,
            cancel=CANCEL,
            scan_cache=not args.no_scan_cache,
            layout_options={
                k: v
                for k, v in (
                    ("cmmd_missing", args.cmmd_missing),
                    ("birads_positive", args.birads_positive),
                    ("birads_negative", args.birads_negative),
                )
                if v is not None
            },
        )
    except LayoutError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result.cancelled:  # Ctrl-C: a part of the dataset is not a scan of it
        raise Interrupted
    s = result.summary()
    print(f"Dataset {result.root} (layout: {result.layout})")
    print(f"  labels              {result.label_rule}")
    print(f"  files examined      {result.files_seen}")
    print(f"  usable images       {s['images']} from {s['patients']} patients")
    print("  by label            " + ", ".join(f"{k} {v}" for k, v in s["by_label"].items()))
    print("  patients by label   " + ", ".join(f"{k} {v}" for k, v in s["patients_by_label"].items()))
    print("  by view             " + ", ".join(f"{k} {v}" for k, v in s["by_view"].items()))
    print("  by laterality       " + ", ".join(f"{k} {v}" for k, v in s["by_laterality"].items()))
    print(f"  rejected            {s['rejected']}")
    counts = {k: v for k, v in s["rejected_by_category"].items() if v}
    if counts:
        print("    by reason         " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    for path, reason in result.rejected[: args.show]:
        print(f"    {path}: {reason}")
    if len(result.rejected) > args.show:
        print(f"    ... {len(result.rejected) - args.show} more (see --json)")
    print(f"  unlabeled images    {s['unlabeled']}")
    for path in result.unlabeled[: args.show]:
        print(f"    {path}")
    if len(result.unlabeled) > args.show:
        print(f"    ... {len(result.unlabeled) - args.show} more (see --json)")
    print(f"  labels w/o images   {s['labels_without_images']}")
    print(f"  excluded            {s['excluded']}" + "".join(f"\n    {why}: {n}" for why, n in s["excluded_by_reason"].items()))
    lesions = s["lesions"]
    if lesions["lesions"]:
        print(
            f"  lesions             {lesions['lesions']} on {lesions['images_with_lesions']} images "
            f"({lesions['positioned']} with a position)"
        )
    for note in result.notes:
        print(f"  note: {note}")
    if result.verified:
        print("  verified            every usable image decoded")
    print(
        f"  took {result.seconds:.2f} s ({result.files_seen / max(result.seconds, 1e-9):.0f} files/s; "
        f"{result.headers_cached} headers from the scan cache, {result.headers_read} read)"
    )
    if args.json:
        write_json(os.path.expanduser(args.json), result.to_json(shareable_paths=args.shareable_paths))
        print(f"wrote {args.json}")
    return 0
