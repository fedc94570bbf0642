"""``arfl-studio demo-data DIR``: write the synthetic CMMD-layout demo dataset."""

from __future__ import annotations

import os
import sys

from arfl_studio.atomic import write_json
from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    from arfl_studio.data.demo.dataset import DEFAULT_PATIENTS, DEFAULT_SIZE, LARGE_SIZE

    parser = subparsers.add_parser(
        "demo-data",
        help="write synthetic DICOM mammograms in the CMMD layout with a clinical xlsx",
        description="Synthetic MG 'for presentation' DICOM files (CC and MLO of both breasts per patient, "
        "MONOCHROME1/2, LINEAR/SIGMOID windows, compressed and uncompressed, burned-in labels and "
        "detector-edge stripes like real images) plus CMMD_clinicaldata_revision.xlsx. Deterministic per seed. "
        "An earlier demo in DIR is replaced file by file; other files in DIR are never touched.",
    )
    parser.add_argument("dir", metavar="DIR", help="output folder (missing, empty, or an earlier demo dataset)")
    parser.add_argument("--patients", type=int, default=DEFAULT_PATIENTS, help=f"number of patients (default {DEFAULT_PATIENTS})")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        default=list(DEFAULT_SIZE),
        help=f"image rows and columns (default {DEFAULT_SIZE[0]} {DEFAULT_SIZE[1]})",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--large",
        type=int,
        default=0,
        metavar="N",
        help=f"render the first N patients at detector size, {LARGE_SIZE[0]}x{LARGE_SIZE[1]} (slow; default 0)",
    )
    parser.add_argument("--json", metavar="PATH", help="write what was generated as JSON")
    declare_outputs(parser, files=("json",), folders=("dir",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from arfl_studio.commands.interruption import CANCEL, Interrupted, progress_note
    from arfl_studio.data.demo.dataset import GenerationCancelled, generate_demo_dataset, read_demo_manifest

    # Written into a hidden sibling folder and moved into place at the end: Ctrl-C keeps nothing.
    progress = progress_note("images generated", f"nothing was written to {args.dir} (an earlier demo dataset there is unchanged)")
    try:
        out = generate_demo_dataset(
            args.dir,
            patients=args.patients,
            size=tuple(args.size),
            seed=args.seed,
            large_patients=args.large,
            progress=progress,
            cancel=CANCEL,
        )
    except GenerationCancelled:
        raise Interrupted from None
    except (ValueError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    manifest = read_demo_manifest(out) or {}
    counts = manifest.get("counts", {})
    print(f"Wrote the demo dataset to {out}")
    print(f"  patients            {manifest.get('patients')}")
    size = manifest.get("size") or ("?", "?")  # an unreadable manifest must not hide that the data was written
    print(f"  images              {counts.get('images')} ({size[0]}x{size[1]})")
    print(
        f"  labelled images     {manifest.get('labelled_images')}: " + ", ".join(f"{k} {v}" for k, v in counts.get("by_label", {}).items())
    )
    print(f"  unlabeled images    {counts.get('unlabeled')} (breasts without a clinical row, as in CMMD)")
    print("  breasts             " + ", ".join(f"{k} {v}" for k, v in manifest.get("breasts", {}).items()))
    if args.json:
        write_json(os.path.expanduser(args.json), {"dir": str(out), **manifest})
        print(f"wrote {args.json}")
    return 0
