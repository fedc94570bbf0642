"""``arfl-studio reproduce two-moons``: the paper's Table 1 / Figure 3 experiment."""

from __future__ import annotations

import argparse
import sys

from arfl_studio.commands.outputs import declare_outputs


def _csv(kind):
    def parse(text):
        return tuple(kind(v.strip()) for v in text.split(",") if v.strip())

    return parse


def register(subparsers) -> None:
    parser = subparsers.add_parser("reproduce", help="reproduce an experiment of the paper (two-moons: Table 1, Figure 3)")
    experiments = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    p = experiments.add_parser(
        "two-moons",
        help="Table 1 rows A-H (+ D', F' with Eq. 5's printed sign) on make_moons, optionally with exact worst-case evaluation",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1); each fixes data sample, init and order")
    p.add_argument("--seed-list", type=_csv(int), default=None, help="explicit seeds, e.g. 0,1,2 (overrides --seeds)")
    p.add_argument("--epochs", type=int, default=5000)
    p.add_argument("--rows", type=_csv(str), default=None, help="comma-separated Table 1 rows among A,B,C,D,D',E,F,F',G,H (default: all)")
    p.add_argument(
        "--variant",
        type=_csv(str),
        default=("paper",),
        help="L_robust variant(s) for the ARFL rows: paper, signed, batch-correlation (comma list)",
    )
    p.add_argument(
        "--features", type=_csv(str), default=("post",), help="feature point(s) for L_robust: post and/or pre activation (comma list)"
    )
    p.add_argument("--lambda", dest="robust_weight", type=float, default=0.5, help="ARFL weight lambda")
    p.add_argument("--optimizer", choices=("adam", "adamw", "sgd"), default="adam")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    p.add_argument("--train-samples", type=int, default=10_000)
    p.add_argument("--test-samples", type=int, default=1_000)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--eps-train", type=float, default=0.05, help="FGSM epsilon_1 for training")
    p.add_argument("--eps-test", type=float, default=0.2, help="epsilon_2 of the test attacks and the worst-case ball")
    p.add_argument("--trades-beta", type=float, default=6.0)
    p.add_argument("--pgd-steps", type=int, default=50)
    p.add_argument("--pgd-restarts", type=int, default=5)
    p.add_argument("--worst-case", action="store_true", help="exact worst-case search in the eps_2 ball + masking flags")
    p.add_argument("--grid", type=int, default=41, help="worst-case lattice points per axis (odd)")
    p.add_argument("--refine", type=int, default=11, help="points per axis of the local refinement lattice (0: off)")
    p.add_argument("--refine-top", type=int, default=3, help="refine around this many worst lattice points")
    p.add_argument("--no-grid-check", action="store_true", help="skip the 2x finer lattice check")
    p.add_argument(
        "--mask-tolerance",
        type=float,
        default=0.05,
        help="flag a row whose FGSM-minus-worst gap exceeds row A's by more than this (accuracy fraction)",
    )
    p.add_argument("--naive", action="store_true", help="train one network after another (benchmark baseline)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, mps (tiny MLPs are fastest on the CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", metavar="PATH", help="write the results document here")
    p.add_argument("--figure", metavar="PATH", help="write the Figure 3 decision-boundary plot (.png/.svg/.pdf)")
    p.add_argument("--save-models", metavar="PATH", help="save every trained ensemble (state dicts + layout) to this .pt file")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    declare_outputs(p, files=("json", "figure", "save_models"))
    p.set_defaults(func=run)


def settings_from_args(args):
    from arfl_studio.experiments.two_moons import BASE_ROWS, TwoMoonSettings

    seeds = list(args.seed_list) if args.seed_list else list(range(args.seeds))
    return TwoMoonSettings(
        seeds=seeds,
        epochs=args.epochs,
        n_train=args.train_samples,
        n_test=args.test_samples,
        noise=args.noise,
        activation=args.activation,
        optimizer=args.optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        robust_weight=args.robust_weight,
        eps_train=args.eps_train,
        eps_test=args.eps_test,
        trades_beta=args.trades_beta,
        rows=tuple(args.rows) if args.rows else BASE_ROWS,
        variants=tuple(args.variant),
        features=tuple(args.features),
        pgd_steps=args.pgd_steps,
        pgd_restarts=args.pgd_restarts,
        worst_case=args.worst_case,
        grid=args.grid,
        refine=args.refine,
        refine_top=args.refine_top,
        grid_check=not args.no_grid_check,
        mask_tolerance=args.mask_tolerance,
        device=args.device,
    )


def run(args) -> int:
    import torch

    from arfl_studio.atomic import write_json
    from arfl_studio.experiments.two_moons import run_two_moons
    from arfl_studio.experiments.two_moons_table import format_table, public
    from arfl_studio.training import SettingError

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        settings = settings_from_args(args).validate()
        if args.figure and not {"E", "F"} <= set(settings.rows):
            raise SettingError("--figure needs rows E and F (dual adversarial training without / with ARFL)")
    except (SettingError, ValueError) as error:
        print(f"arfl-studio reproduce two-moons: {error}", file=sys.stderr)
        return 2
    progress = (lambda message: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    doc = run_two_moons(settings, naive=args.naive, progress=progress, keep_models=bool(args.figure or args.save_models))
    if args.save_models:
        from arfl_studio.experiments.two_moons import save_models

        save_models(doc, args.save_models)
    if args.figure:
        from arfl_studio.experiments.two_moons_figure import figure_from_run

        doc["figure"] = str(figure_from_run(doc, args.figure, mark_worst_case=settings.worst_case))
    out = public(doc)
    print(format_table(out))
    if args.json:
        write_json(args.json, out)
    return 0
