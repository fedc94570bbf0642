"""``arfl-studio preprocess DIR``: fill the preprocessing cache, and show the crops.

Scans DIR like ``scan``, then decodes, orients, crops and resizes every usable image
into the content-keyed cache (what ``run`` would do first). ``--contact-sheet PNG``
also draws images as stored with their crop boxes, so the crop can be checked by
eye; ``--rehash`` recomputes the remembered content hashes from the files' bytes.
"""

from __future__ import annotations

import os
import sys

from arfl_studio.data.datasets.layout_names import LAYOUTS
from arfl_studio.atomic import write_json
from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    from arfl_studio.data.preprocess.crop import CROP_METHODS, DEFAULT_CROP
    from arfl_studio.data.preprocess.geometry import FITS
    from arfl_studio.data.preprocess.settings import INTENSITIES

    parser = subparsers.add_parser(
        "preprocess",
        help="fill the preprocessing cache for a dataset; draw a contact sheet of crops",
        description="Scan DIR, then decode, orient, crop and resize every usable image into the cache "
        "(content-keyed: unchanged files are not redone). Optionally draw the crop boxes.",
    )
    parser.add_argument("dir", metavar="DIR", help="dataset folder")
    parser.add_argument("--labels", metavar="FILE", help="CMMD clinical table (xlsx/CSV) or a labels CSV")
    parser.add_argument("--layout", choices=list(LAYOUTS), default="auto")
    parser.add_argument("--cache", metavar="DIR", help="cache folder (default: the user data folder's cache)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=[224, 224], help="model input rows and columns")
    parser.add_argument("--crop", choices=list(CROP_METHODS), default=DEFAULT_CROP, help=f"crop method (default {DEFAULT_CROP})")
    parser.add_argument(
        "--fit", choices=list(FITS), default="stretch", help="stretch the crop to the size (the paper) or pad it, keeping the aspect ratio"
    )
    parser.add_argument(
        "--pixel-mm", type=float, metavar="MM", help="model pixel size in mm from the DICOM pixel spacing (needs --fit pad)"
    )
    parser.add_argument(
        "--intensity", choices=list(INTENSITIES), default="as-read", help="as-read, or in-breast 1st/99th percentiles -> 0/1"
    )
    parser.add_argument("--channels", type=int, choices=[1, 3], default=3)
    parser.add_argument("--no-orient", action="store_true", help="do not flip breasts to a common side")
    parser.add_argument("--workers", type=int, default=1, help="processes decoding images (default 1)")
    parser.add_argument(
        "--rehash", action="store_true", help="recompute every file's content hash from its bytes instead of trusting the remembered one"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="draw images with their crop boxes into PNG")
    parser.add_argument("--sheet-images", type=int, default=24, metavar="N", help="images on the contact sheet (default 24)")
    parser.add_argument("--sheet-only", action="store_true", help="only draw the contact sheet; leave the cache alone")
    parser.add_argument("--json", metavar="PATH", help="write what was done as JSON")
    declare_outputs(parser, files=("json", "contact_sheet"), folders=("cache",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def _spread(items: list, n: int) -> list:
    """``n`` items spread evenly over the list (all of them when it is short)."""
    if n <= 0 or len(items) <= n:
        return list(items)
    return [items[int(i * len(items) / n)] for i in range(n)]


def run(args) -> int:
    from arfl_studio.commands.interruption import CANCEL, Interrupted, note, progress_note, stop_if_cancelled
    from arfl_studio.data.preprocess.cache import PreprocessCache, default_cache_dir
    from arfl_studio.data.datasets.layouts import LayoutError, scan_dataset
    from arfl_studio.data.preprocess.dataset import preprocess_records
    from arfl_studio.data.preprocess.settings import PreprocessSettingError, PreprocessSettings

    try:
        settings = PreprocessSettings(
            orient=not args.no_orient,
            crop=args.crop,
            size=tuple(args.size),
            channels=args.channels,
            fit=args.fit,
            pixel_mm=args.pixel_mm,
            intensity=args.intensity,
        )
        scan = scan_dataset(args.dir, labels=args.labels, layout=args.layout, cancel=CANCEL)
    except (PreprocessSettingError, LayoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    kept = "every image preprocessed so far stays in the cache (re-running skips it); no --json or sheet was written"
    note("0 images preprocessed", kept)
    stop_if_cancelled()
    records = scan.images
    cache_dir = os.path.expanduser(args.cache) if args.cache else str(default_cache_dir())
    result: dict = {"dir": str(scan.root), "images": len(records), "settings": settings.to_dict(), "cache": cache_dir}
    print(f"Dataset {scan.root}: {len(records)} usable images")
    if not args.sheet_only:
        if args.rehash:
            cache = PreprocessCache(cache_dir)
            changed = cache.rehash(r.path for r in records)
            cache.save_index()
            result["rehash"] = {"files": len(records), "changed": [str(p) for p in changed]}
            print(f"  rehashed            {len(records)} files, {len(changed)} changed behind an unchanged stamp")
        report = preprocess_records(
            records,
            settings,
            cache_dir,
            workers=max(1, args.workers),
            progress=progress_note("images preprocessed (or found in the cache)", kept),
            cancel=CANCEL,
        )
        if report.cancelled:
            raise Interrupted
        result["preprocess"] = report.to_dict()
        print(f"  decoded             {report.decoded}")
        print(f"  already cached      {report.cached}")
        print(f"  failed              {len(report.failed)}")
        for path, reason in report.failed[:10]:
            print(f"    {path}: {reason}")
        print(f"  took {report.seconds:.2f} s; cache {cache_dir}")
    if args.contact_sheet:
        from arfl_studio.data.preprocess.crop_sheet import crop_boxes, public, write_contact_sheet

        boxes = crop_boxes(_spread(records, args.sheet_images), settings)
        try:
            write_contact_sheet(
                os.path.expanduser(args.contact_sheet), boxes, title=f"{scan.root.name}: crop = {settings.crop}, margin = {settings.margin}"
            )
        except ValueError as err:
            print(f"error: contact sheet {args.contact_sheet}: {err}", file=sys.stderr)
            return 2
        result["contact_sheet"] = {"path": args.contact_sheet, "boxes": public(boxes)}
        print(f"wrote {args.contact_sheet} ({sum('native_box' in b for b in boxes)} images with their crop boxes)")
    if args.json:
        write_json(os.path.expanduser(args.json), result)
        print(f"wrote {args.json}")
    return 0
