"""``arfl-studio run CONFIG.toml``: a cross-validated experiment (methods x folds, or a sweep).

Re-running the same command resumes: finished folds are kept, an unfinished fold
continues from its last checkpoint. ``--fold K`` / ``--point P`` run one fold / one
sweep point (cluster job arrays); ``arfl-studio collect DIR`` merges them. ``--final`` also
trains each method's final model on every patient (OUT/KEY/final), for ``arfl-studio evaluate``. Under
``torchrun --nproc_per_node N -m arfl_studio run CONFIG.toml`` each fold trains
data-parallel on N GPUs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from arfl_studio.commands.interruption import declare_cancellable
from arfl_studio.commands.outputs import declare_outputs


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a cross-validated experiment from a TOML config (resumable)",
        description="Train and evaluate every method (or sweep point) on every patient-level fold of the "
        "config's data; writes config.toml, manifest.json, splits.json, results.json and per-fold "
        "metrics/checkpoints into the run folder. Re-run the same command to resume.",
    )
    parser.add_argument(
        "config",
        metavar="CONFIG.toml",
        help="experiment config, or the name of a bundled example (demo_tiny, cmmd_table3, real_cpu, real_gpu)",
    )
    parser.add_argument("--out", metavar="DIR", help="run folder (default: runs/<config name>)")
    parser.add_argument(
        "--fold", type=int, action="append", metavar="K", help="run only fold K (0-based; repeatable) -- for cluster job arrays"
    )
    parser.add_argument("--point", type=int, action="append", metavar="P", help="run only sweep point P (0-based; repeatable)")
    parser.add_argument(
        "--restart-damaged", action="store_true", help="start a fold over when its resume checkpoint (resume.pt) is damaged, e.g. truncated"
    )
    parser.add_argument(
        "--final",
        action="store_true",
        help="after the folds, also train each method's final model on every patient (OUT/KEY/final; "
        "threshold and epoch chosen on held-out training patients as [training] configures)",
    )
    parser.add_argument(
        "--split",
        choices=("patient-cv", "official"),
        help="override the config's [cv] split: patient-level cross-validation, or the dataset's official "
        "train/test split as one fold (CBIS-DDSM, VinDr-Mammo)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final table")
    parser.add_argument("--json", metavar="PATH", help="write the results document (JSON) here")
    declare_outputs(parser, files=("json",), folders=("out",))
    declare_cancellable(parser)
    parser.set_defaults(func=run)


def _printer(quiet: bool, out: Path):
    from arfl_studio.commands.interruption import note
    from arfl_studio.experiments.final_run import FinalFinished
    from arfl_studio.experiments.runner import FoldEvent, FoldFinished
    from arfl_studio.training.events import EpochEvent, StatusEvent

    finished = {"folds": 0, "finals": 0}

    def remember(event) -> None:  # what the one line after Ctrl-C says
        if isinstance(event, (FinalFinished, FoldFinished)):
            finished["finals" if isinstance(event, FinalFinished) else "folds"] += 1
        folds, finals = finished["folds"], finished["finals"]
        note(
            f"{folds} {'fold' if folds == 1 else 'folds'} finished by this command"
            + (f" and {finals} final {'model' if finals == 1 else 'models'}" if finals else ""),
            f"every finished fold and the last finished epoch of each unfinished one (resume.pt) are kept "
            f"in {out}; re-run the same command to resume",
        )

    def show(event) -> None:
        remember(event)
        if isinstance(event, FinalFinished):
            t = event.threshold
            print(
                f"[{event.method_key} final] trained on every patient; threshold logit {t['logit']:.4g} "
                f"({t['rule']}, chosen on {t.get('chosen_on')})",
                flush=True,
            )
        elif isinstance(event, FoldFinished):
            print(
                f"[{event.method_key} fold {event.fold}] held-out standard AUC {event.standard_auc:.4f}, "
                f"adversarial AUC {event.adversarial_auc:.4f}",
                flush=True,
            )
        elif isinstance(event, FoldEvent) and not quiet:
            inner, where = event.event, "final" if event.fold is None else f"fold {event.fold}"
            if isinstance(inner, EpochEvent):
                metrics = " ".join(f"{k} {v:.4f}" for k, v in inner.metrics.items())
                print(
                    f"[{event.method_key} {where}] epoch {inner.epoch + 1}/{inner.epochs} "
                    f"loss {inner.losses.get('total', float('nan')):.4f} {metrics} ({inner.seconds:.1f}s)",
                    flush=True,
                )
            elif isinstance(inner, StatusEvent) and inner.status in ("failed", "cancelled"):
                print(f"[{event.method_key} {where}] {inner.status}: {inner.message}", flush=True)

    return show


def run(args) -> int:
    from arfl_studio import atomic
    from arfl_studio.bundled import resolve_config
    from arfl_studio.commands.interruption import CANCEL, Interrupted
    from arfl_studio.experiments import run_access
    from arfl_studio.experiments.config import load_config
    from arfl_studio.experiments.result_tables import render_table
    from arfl_studio.experiments.runner import ExperimentError, run_experiment
    from arfl_studio.models.image import PretrainedWeightsMissing
    from arfl_studio.training.methods import SettingError

    try:
        config = load_config(resolve_config(args.config))
        if args.split:
            config.cv.split = args.split
    except (SettingError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / (config.name or Path(args.config).stem)
    print(f"Run folder: {out}", flush=True)  # printed before the run: nothing is written until it validates
    printer = _printer(args.quiet, out)
    printer(None)  # the note for a Ctrl-C before the first event
    try:
        result = run_experiment(
            config,
            out,
            folds=args.fold,
            points=args.point,
            callback=printer,
            restart_damaged=args.restart_damaged,
            final=args.final,
            cancel=CANCEL,
        )
    except (ExperimentError, SettingError, PretrainedWeightsMissing, ValueError) as exc:
        print(f"error: {exc}\n(run folder: {out})", file=sys.stderr)
        return 1
    if result.status == "cancelled":  # Ctrl-C: the run folder says so; cli prints what was kept
        raise Interrupted
    if not result.results:  # not rank 0 under torchrun
        return 0
    print()
    print(render_table(result.results, "md"))
    print(f"status: {result.status}; results in {out / 'results.json'}")
    for key, *seed in result.finals:
        print(
            f"final model of {key}{f' (seed {seed[0]})' if seed else ''}: "
            f"{run_access.fold_checkpoint(out, key, None, seed[0] if seed else None)}"
        )
    if args.json:
        try:
            atomic.write_json(args.json, {"status": result.status, "run_dir": str(out), **result.results})
        except OSError as exc:
            print(f"error: cannot write {args.json}: {exc.strerror if not isinstance(exc, atomic.NoSpaceError) else exc}", file=sys.stderr)
            return 1
    return 0 if result.status in ("finished", "partial") else 3
