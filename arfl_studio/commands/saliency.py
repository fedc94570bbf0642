"""``arfl-studio saliency CHECKPOINT IMAGE``: what the model looks at on one mammogram.

``--space native`` (default): the map is computed on the model input and mapped back
through the preprocessing geometry (resize, crop box, flip) onto the DICOM's own
pixel grid, so the overlay PNG and the ``--raw`` map have the image's size and
orientation and sit on the anatomy (0 outside the crop). ``--space model`` writes
the model input as the model sees it (oriented, cropped, resized).

Methods: ``gradient`` (the paper's map: gradient of the loss w.r.t. the input,
scaled to [0, 1]), ``smoothgrad``, ``integrated-gradients``, and ``perturbation``
(the adversarial delta of ``--attack`` at ``--eps`` on a diverging map, plus the
adversarial image with ``--adv-out``). The image is read with the data layer and
preprocessed as in training (the run's config when the checkpoint sits in a run
folder, else the flags). ``--compare CHECKPOINT2`` writes one PNG with both models
side by side and a colour bar, as in the paper's Figure 5. ``--out PATH.dcm`` writes the overlay
as a DICOM Secondary Capture in the source's study, referring to it (``saliency_dicom``).

``arfl-studio saliency RUN --localisation``: where each method's models look, measured
against the lesion marks of the run's held-out patients (or of ``--data DIR``): the
pointing game, the saliency energy inside the lesions and off the breast, with chance
beside them and paired tests between methods (``experiments.localisation_run``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from arfl_studio.atomic import write_json
from arfl_studio.commands.attack import add_data_arguments, preprocess_settings
from arfl_studio.commands.outputs import declare_outputs
from arfl_studio.commands.saliency_dicom import check_dicom_output, wants_dicom, write_dicom_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "saliency",
        help="saliency / perturbation map of one mammogram, blended over it (optionally two models side by side)",
        description="Write the mammogram with a saliency or adversarial-perturbation map blended over it, "
        "registered to the DICOM as stored (--space native) or on the model input (--space model).",
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="model .pt (spec .json beside it); with --localisation: the run folder")
    parser.add_argument("image", metavar="IMAGE", nargs="?", help="DICOM file (or a grey .npy / .png for tests)")
    parser.add_argument("--method", choices=["gradient", "smoothgrad", "integrated-gradients", "perturbation"], default="gradient")
    parser.add_argument(
        "--target",
        type=int,
        choices=[0, 1],
        help="class the map explains (default: the prediction at the model's stored decision threshold)",
    )
    parser.add_argument(
        "--out",
        metavar="PATH.png",
        help="blended overlay (or the comparison figure); the suffix chooses the format: .png, .svg or .pdf (and .tif for one model); "
        ".dcm: a DICOM Secondary Capture beside the source (one per model)",
    )
    parser.add_argument("--raw", metavar="PATH.npy", help="the map itself (H, W) float32; with --compare, (2, H, W)")
    parser.add_argument(
        "--space",
        choices=["native", "model"],
        default="native",
        help="native: the image's own size and orientation (default); model: the model input",
    )
    parser.add_argument("--compare", metavar="CHECKPOINT2", help="second model (e.g. without ARFL): one PNG, two panels")
    parser.add_argument("--attack", choices=["fgsm", "pgd", "pgd-strong", "apgd", "square"], default="pgd", help="perturbation: attack")
    parser.add_argument("--eps", type=float, default=0.01, help="perturbation: L-inf radius (default 0.01)")
    parser.add_argument("--steps", type=int, help="perturbation: attack steps")
    parser.add_argument("--adv-out", metavar="PATH.png", help="perturbation: also write the adversarial image")
    parser.add_argument("--samples", type=int, default=16, help="smoothgrad: noisy samples")
    parser.add_argument("--noise", type=float, default=0.1, help="smoothgrad: noise sd as a fraction of the range")
    parser.add_argument("--ig-steps", type=int, default=32, help="integrated gradients: path steps")
    parser.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1]")
    parser.add_argument("--colormap", help="matplotlib colormap (default inferno; RdBu_r for perturbation)")
    add_data_arguments(parser)
    parser.add_argument("--json", metavar="PATH", help="write a JSON summary")
    add_localisation_arguments(parser)
    declare_outputs(parser, files=("json", "out", "raw", "adv_out", "table"))
    parser.set_defaults(func=run)


def load_image(path: Path, settings):
    """(model input (H, W) in [0, 1], native pixels, geometry) of one image file."""
    from arfl_studio.data.preprocess.geometry import Geometry
    from arfl_studio.data.preprocess.transform import preprocess_pixels, resize_image

    suffix = path.suffix.lower()
    if suffix == ".npy":  # already oriented and cropped: resized only
        pixels = np.clip(np.load(path).astype(np.float32), 0, 1)
        rows, cols = pixels.shape
        return resize_image(pixels, settings.size), pixels, Geometry(False, (0, rows, 0, cols), (rows, cols))
    if suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        from matplotlib import image as mpimg

        pixels = mpimg.imread(path).astype(np.float32)
        pixels = pixels[..., :3].mean(axis=-1) if pixels.ndim == 3 else pixels
        pixels = pixels / 255.0 if pixels.max() > 1 else pixels
        spacing = None  # no pixel size in the file: a model with pixel_mm letterboxes it
    else:
        from arfl_studio.data import read_mammogram

        mammogram = read_mammogram(path)
        pixels, spacing = mammogram.pixels, mammogram.pixel_spacing
    gray, geometry = preprocess_pixels(pixels, settings, spacing=spacing)
    return gray, pixels, geometry


def _model_map(model, spec, gray: np.ndarray, args, threshold):
    import torch

    from arfl_studio.evaluation.saliency import explained_class, perturbation, saliency_map

    image = torch.from_numpy(np.broadcast_to(gray, (spec.in_channels, *gray.shape)).copy())
    with torch.no_grad():
        logit = float(model(image[None].float()).reshape(-1)[0])
    # the predicted class at the decision threshold stored with the model (not at logit 0)
    target = explained_class(model, image, args.target, threshold.logit)
    start = time.perf_counter()
    if args.method == "perturbation":
        delta, adv = perturbation(model, image, target, args.attack, args.eps, steps=args.steps)
        out: tuple[np.ndarray, np.ndarray | None] = (delta, adv)
    else:
        out = (saliency_map(model, image, args.method, target, samples=args.samples, noise=args.noise, ig_steps=args.ig_steps), None)
    chosen = "--target" if args.target is not None else f"prediction at the stored threshold ({threshold.describe()})"
    info = {
        "logit": logit,
        "probability": float(1 / (1 + np.exp(-logit))),
        "target": target,
        "explains": CLASS_NAMES[target],
        "explains_why": chosen,
        "threshold": threshold.to_dict(),
        "seconds": round(time.perf_counter() - start, 4),
    }
    return out, info


CLASS_NAMES = {0: "benign", 1: "malignant"}


def _to_space(args, values, adv, pixels, geometry, settings):
    """Model-space map (and adversarial input) in the chosen space."""
    if args.space == "model":
        return values, adv
    from arfl_studio.data.preprocess.geometry import model_to_native

    fit = getattr(settings, "fit", "stretch")
    native = model_to_native(values, geometry, fit)
    if adv is not None:  # δ mapped back onto the acquired image
        adv = np.clip(pixels + native, 0, 1).astype(np.float32)
    return native, adv


def _check_output_names(args) -> None:
    """Each output's suffix names its format; refused before any work (``x.svg`` got PNG bytes)."""
    from arfl_studio.evaluation.saliency import FIGURE_FORMATS, IMAGE_FORMATS, output_format

    if wants_dicom(args):
        check_dicom_output(args)
    else:
        output_format(args.out, FIGURE_FORMATS if args.compare else IMAGE_FORMATS)
    if args.adv_out:
        output_format(args.adv_out, IMAGE_FORMATS)
    if args.raw and Path(args.raw).suffix.lower() != ".npy":
        raise ValueError(f"{args.raw}: --raw writes a NumPy array; give it a .npy name")


def run(args) -> int:
    if args.localisation:
        return run_localisation(args)
    if not args.image or not args.out:
        print("error: CHECKPOINT IMAGE and --out PATH.png are needed (or RUN --localisation)", file=sys.stderr)
        return 2
    from arfl_studio.evaluation.saliency import (
        blend_overlay,
        compare_figure,
        overlay_figure,
        perturbation_overlay,
        save_png,
    )
    from arfl_studio.models.registry import CheckpointError, load_checkpoint, load_threshold

    try:
        _check_output_names(args)
        model, spec = load_checkpoint(args.checkpoint)
        settings = preprocess_settings(args, spec, Path(args.checkpoint))
        gray, pixels, geometry = load_image(Path(args.image), settings)
        models = [(Path(args.checkpoint), model, spec, load_threshold(args.checkpoint))]
        if args.compare:
            model2, spec2 = load_checkpoint(args.compare)
            other = preprocess_settings(args, spec2, Path(args.compare))
            if {**other.to_dict(), "channels": 0} != {**settings.to_dict(), "channels": 0}:
                raise ValueError(
                    f"{args.compare} was trained on another input than {args.checkpoint} "
                    f"({other.to_dict()} vs {settings.to_dict()}): one image cannot show both"
                )
            models.append((Path(args.compare), model2, spec2, load_threshold(args.compare)))
    except (CheckpointError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    perturb = args.method == "perturbation"
    cmap = args.colormap or ("RdBu_r" if perturb else "inferno")
    base = gray if args.space == "model" else pixels
    panels, maps, infos = [], [], []
    for path, m, s, threshold in models:
        (values, adv), info = _model_map(m, s, gray, args, threshold)
        values, adv = _to_space(args, values, adv, pixels, geometry, settings)
        if perturb:
            rgb, gain = perturbation_overlay(base, values, cmap, args.alpha)
            info["amplification"] = gain
            info["max_abs_delta"] = float(np.abs(values).max())
        else:
            rgb = blend_overlay(base, values, cmap, args.alpha)
        name = path.parent.parent.name + "/" + path.parent.name if path.stem == "model" else path.stem
        what = "δ against" if perturb else "explains"
        panels.append((f"{name}  p={info['probability']:.2f} · {what} {info['explains']}", rgb))
        maps.append(values)
        info["checkpoint"] = str(path)
        infos.append(info)
        if perturb and args.adv_out:
            target_path = (
                args.adv_out if len(models) == 1 else str(Path(args.adv_out).with_stem(Path(args.adv_out).stem + f"_{len(infos)}"))
            )
            save_png(target_path, np.round(np.clip(adv, 0, 1) * 255).astype(np.uint8))
            info["adversarial_image"] = target_path
    if wants_dicom(args):  # each model's picture beside the source mammogram
        write_dicom_outputs(args, [rgb for _, rgb in panels], [path for path, *_ in models])
    elif len(models) == 1:
        save_png(args.out, panels[0][1])
    else:
        label = "scaled gradient" if args.method == "gradient" else "scaled attribution"
        title, levels = args.method, (0.0, 1.0)
        if perturb:
            peak = max(float(np.abs(v).max()) for v in maps) or 1.0
            # one shared scale so the panels compare: re-blend with a common amplification
            panels = [(t, blend_overlay(base, np.clip(0.5 + 0.5 * v / peak, 0, 1), cmap, args.alpha)) for (t, _), v in zip(panels, maps)]
            label, title, levels = "perturbation delta", f"{args.attack} eps={args.eps:g}", (-peak, peak)
        if args.space == "model":
            compare_figure(panels, args.out, cmap, label, vmin=levels[0], vmax=levels[1], title=title)
        else:  # full resolution, the image's own orientation
            overlay_figure(
                panels,
                args.out,
                colormap=cmap,
                levels=levels,
                colorbar_label=label,
                caption=f"{Path(args.image).name} · {title} · native DICOM grid",
            )
    if args.raw:
        from arfl_studio import atomic

        import io

        buf = io.BytesIO()
        np.save(buf, np.stack(maps).astype(np.float32) if len(maps) > 1 else maps[0].astype(np.float32))
        atomic.write_bytes(args.raw, buf.getvalue())
    for info in infos:
        print(
            f"{info['checkpoint']}: p(malignant)={info['probability']:.3f}; the map explains class "
            f"{info['explains']} ({info['explains_why']}); {args.method} in {info['seconds']:.2f} s"
        )
    print(f"wrote {args.out}" + (f" and {args.raw}" if args.raw else "") + f" ({args.space} space, {maps[0].shape[0]}x{maps[0].shape[1]})")
    if args.json:
        write_json(
            args.json,
            {
                "image": str(args.image),
                "method": args.method,
                "preprocess": settings.to_dict(),
                "space": args.space,
                "shape": list(maps[0].shape),
                "geometry": geometry.to_dict(),
                "out": args.out,
                "raw": args.raw,
                "models": infos,
                "attack": {"kind": args.attack, "eps": args.eps} if perturb else None,
            },
        )
    return 0


def add_localisation_arguments(parser) -> None:
    group = parser.add_argument_group("localisation (RUN --localisation)")
    group.add_argument(
        "--localisation", action="store_true", help="measure each method's saliency against the lesion marks of the run's held-out patients"
    )
    group.add_argument("--data", metavar="DIR", help="measure on this dataset with lesion marks instead")
    group.add_argument("--labels", metavar="FILE", help="labels table for --data")
    group.add_argument("--layout", default="auto", help="layout of --data (default: detected)")
    group.add_argument("--model", action="append", metavar="KEY", help="method key(s) to measure (default: all)")
    group.add_argument("--fold", type=int, default=1, metavar="K", help="with --data: fold model to use (1-based)")
    group.add_argument("--limit", type=int, metavar="N", help="at most N images per fold")
    group.add_argument("--tolerance-mm", type=float, default=5.0, help="pointing-game tolerance (default 5 mm)")
    group.add_argument("--table", metavar="PATH", help="write the table (.md, .csv or .tex)")


def run_localisation(args) -> int:
    from arfl_studio.atomic import write_json
    from arfl_studio.experiments.localisation_run import (
        LocalisationError,
        export_table,
        localisation_over_run,
        render_table,
    )

    if args.method == "perturbation":
        print("error: --localisation measures saliency maps: use --method gradient, smoothgrad or integrated-gradients", file=sys.stderr)
        return 2
    if args.image:
        print("error: --localisation takes a run folder only (no IMAGE)", file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"\r{done}/{total} images", end="\n" if done == total else "", file=sys.stderr, flush=True)

    try:
        doc = localisation_over_run(
            Path(args.checkpoint),
            methods=args.model,
            saliency=args.method,
            tolerance_mm=args.tolerance_mm,
            data=args.data,
            labels=args.labels,
            layout=args.layout,
            fold=args.fold - 1,
            limit=args.limit,
            progress=progress,
        )
    except (LocalisationError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(render_table(doc, "md"), end="")
    for entry in doc["skipped"]:
        print(f"skipped {entry['path']}: {entry['reason']}", file=sys.stderr)
    if args.table:
        print(f"wrote {export_table(doc, args.table)}")
    if args.json:
        write_json(args.json, doc)
    return 0
