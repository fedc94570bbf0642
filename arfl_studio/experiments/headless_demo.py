"""The headless equivalent of opening the app: the demo data, a short comparison, an attack, a map.

``arfl-studio`` runs this where there is no screen (a GPU server over SSH, CI).
It generates the synthetic demo mammograms on first use, cross-validates standard
training, dual adversarial training and dual adversarial training + ARFL on a
small CNN, prints the comparison table, attacks the fold-0 models over an epsilon
sweep, and writes a saliency figure of two models side by side.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from arfl_studio import atomic
from arfl_studio.data.demo.dataset import DEFAULT_PATIENTS, DEFAULT_SIZE, ensure_demo_dataset
from arfl_studio.data.paths import default_data_dir
from arfl_studio.evaluation.robustness import evaluate_robustness
from arfl_studio.evaluation.saliency import blend_overlay, compare_figure, explained_class, saliency_map
from arfl_studio.experiments.config import load_config
from arfl_studio.experiments.result_tables import render_table
from arfl_studio.experiments.run_access import fold_records, load_fold_model, load_fold_threshold
from arfl_studio.experiments.runner import FoldFinished, run_experiment
from arfl_studio.experiments.sources import open_source
from arfl_studio.training.events import EpochEvent

DEMO_METHODS = ("A", "E", "F")
SWEEP_EPS = (1e-3, 4e-3, 1.6e-2)
# The demo's training (also the Training pane's defaults, so the app's first run is the same).
# 48 px and 10 epochs cost about what 64 px and 6 epochs did (48^2 * 10 ~ 64^2 * 6 pixel-epochs)
# but give the small CNN the optimizer steps it needs to find the demo's masses; batch 8 doubles
# the steps again for the same compute. The cosine schedule ends training at a small learning
# rate: at a constant 2e-3 the held-out AUC still jumped by 0.1-0.2 from one epoch to the next,
# and the last epoch's model (and its threshold) was a lottery.
DEMO_EPOCHS = 10
DEMO_FOLDS = 2
DEMO_SIZE = 48
DEMO_LR = 2e-3
DEMO_LR_SCHEDULE = "cosine"
DEMO_BATCH = 8
DEMO_ATTACK_STEPS = 3  # PGD-3 instead of the paper's PGD-7 keeps the demo to a few CPU minutes


def demo_config(
    demo_dir: Path,
    epochs: int = DEMO_EPOCHS,
    folds: int = DEMO_FOLDS,
    size: int = DEMO_SIZE,
    methods: tuple[str, ...] = DEMO_METHODS,
    seed: int = 0,
) -> dict:
    return {
        "name": "headless-demo",
        "data": {"demo": True, "demo_dir": str(demo_dir)},
        "preprocess": {"size": [size, size]},
        "model": {"backbone": "small_cnn"},
        # The decision threshold: Youden's J on each fold's training images (the small CNN does not
        # memorise them in 10 epochs: measured, holding out a fifth of the training patients to
        # choose it gave noisier thresholds and lower AUC); BCE weighs the malignant class by
        # negatives/positives of the training fold (the demo is 58 % benign).
        "training": {
            "epochs": epochs,
            "batch_size": DEMO_BATCH,
            "lr": DEMO_LR,
            "lr_schedule": DEMO_LR_SCHEDULE,
            "seed": seed,
            "validate_adversarial_every": 0,
            "threshold": "youden",
            "threshold_holdout": 0.0,
            "pos_weight": "auto",
        },
        "cv": {"folds": folds, "seed": seed},
        "methods": [{"key": key, "robust_weight": 10.0, "attack": {"steps": DEMO_ATTACK_STEPS}} for key in methods],
        "evaluation": {"kind": "pgd", "eps": 1e-3, "steps": 7},
    }


def _rates(entry: dict, name: str) -> str:
    value = (entry.get(name) or {}).get("mean")
    return "--" if value is None else f"{value:.2f}"


def summary_lines(results: dict) -> list[str]:
    """Per method: held-out AUC and sensitivity / specificity at each fold model's stored threshold."""
    lines = []
    for m in results["methods"]:
        auc = m["standard_auc"]["mean"]
        lines.append(
            f"  {m['key']}. {m['method']}: held-out AUC {'--' if auc is None else f'{auc:.3f}'}; "
            f"at its decision threshold sensitivity {_rates(m, 'standard_sensitivity')}, "
            f"specificity {_rates(m, 'standard_specificity')} "
            f"(attacked: {_rates(m, 'adversarial_sensitivity')} / {_rates(m, 'adversarial_specificity')})"
        )
    return lines


def _print_generation(done: int, total: int) -> None:
    if done == total or done % max(1, total // 4) == 0:
        print(f"  {done}/{total} files written", flush=True)


def _print_progress(event) -> None:
    if isinstance(event, FoldFinished):
        print(
            f"  {event.method_key} fold {event.fold + 1}: standard AUC {event.standard_auc:.3f}, "
            f"adversarial AUC {event.adversarial_auc:.3f}",
            flush=True,
        )
    elif hasattr(event, "event") and isinstance(event.event, EpochEvent):
        e = event.event
        print(
            f"  {event.method_key} fold {event.fold + 1} epoch {e.epoch + 1}/{e.epochs} loss {e.losses.get('total', float('nan')):.3f}",
            flush=True,
        )


def run_headless_demo(
    out_dir: str | Path | None = None,
    epochs: int = DEMO_EPOCHS,
    folds: int = DEMO_FOLDS,
    size: int = DEMO_SIZE,
    demo_dir: str | Path | None = None,
    demo_patients: int = DEFAULT_PATIENTS,
    demo_size: tuple[int, int] = DEFAULT_SIZE,
) -> int:
    started = time.perf_counter()
    out = Path(out_dir) if out_dir else default_data_dir() / "runs" / "headless-demo"
    print("1/4 demo data (synthetic CMMD-layout mammograms; generated on first use)", flush=True)
    demo_dir = ensure_demo_dataset(demo_dir, patients=demo_patients, size=demo_size, progress=_print_generation)
    print(f"  {demo_dir}")

    print(f"2/4 training {', '.join(DEMO_METHODS)} with {folds}-fold patient-level cross-validation into {out}")
    result = run_experiment(demo_config(demo_dir, epochs, folds, size), out, callback=_print_progress)
    if result.status != "finished":
        print(f"training ended: {result.status} {result.message}", file=sys.stderr)
        return 1
    print(render_table(result.results, "md"))
    print(
        "\n".join(["decision thresholds: Youden's J on each fold's training images (stored in model.json)"] + summary_lines(result.results))
    )

    print("3/4 attacking the fold-1 models over an epsilon sweep (PGD, with sanity checks)")
    config = load_config(out / "config.toml")
    _, test_records = fold_records(out, 0)
    test_set = open_source(config).dataset(test_records)
    reports = {}
    for key in ("A", "F"):
        model, _ = load_fold_model(out, key, 0)
        threshold = load_fold_threshold(out, key, 0)  # chosen on the fold's training images
        # The gradient-free Square probe on 32 of the images: on all 102 it took 22 of the 29 s.
        report = evaluate_robustness(
            model,
            test_set,
            attack="pgd",
            eps=SWEEP_EPS,
            records=test_records,
            device="cpu",
            probe_queries=100,
            probe_images=32,
            threshold=threshold.logit,
        )
        reports[key] = {**report.to_json(), "decision_threshold": threshold.to_dict()}
        print(f"-- method {key}, decision threshold {threshold.describe()}\n{report.table()}")
    atomic.write_json(out / "headless_demo_attack.json", reports)

    print("4/4 saliency maps of the same held-out image, standard vs dual + ARFL")
    index = next((i for i, r in enumerate(test_records) if r.label == 1), 0)
    image, _ = test_set[index]
    panels = []
    for key, title in (("A", "A. Standard training"), ("F", "F. Dual adversarial + ARFL")):
        model, _ = load_fold_model(out, key, 0)
        logit = load_fold_threshold(out, key, 0).logit  # the map explains the class predicted at it
        heat = saliency_map(model, image, "gradient", threshold=logit)
        explains = "malignant" if explained_class(model, image, None, logit) else "benign"
        panels.append((f"{title} (explains {explains})", blend_overlay(image.mean(dim=0).numpy(), heat, alpha=0.55)))
    figure = out / "saliency_A_vs_F.png"
    compare_figure(panels, figure, title=f"Input-gradient saliency, {test_records[index].patient_id}")
    print(f"  {figure}\ndone in {time.perf_counter() - started:.0f} s; results in {out}")
    return 0
