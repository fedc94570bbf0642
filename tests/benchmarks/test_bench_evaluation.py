"""Evaluation speed: an eps sweep that reuses the model load, the data loading and the
clean forward pass, against a naive loop that reloads everything per eps; and the time
per saliency method for one 224x224 image on CPU. Ratios only (same run).

Run: pytest -m benchmark tests/benchmarks/test_bench_evaluation.py -s
"""

import time

import pytest
import torch

from arfl_studio.evaluation import evaluate_robustness, saliency_map
from arfl_studio.evaluation.saliency import METHODS
from arfl_studio.models.registry import ModelSpec, build_model, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.benchmark

EPS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    from arfl_studio.data import generate_demo_dataset, scan_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=8, size=(256, 208), seed=0)
    records = scan_dataset(root).images
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=8)
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", build_model(spec), spec)
    return records, ckpt


def _dataset(records):
    from arfl_studio.data import MammogramDataset, PreprocessSettings

    return MammogramDataset(records, PreprocessSettings(size=(64, 64), channels=1))  # decodes DICOM per item


def test_sweep_reuse_vs_reload_per_eps(demo_checkpoint):
    records, ckpt = demo_checkpoint
    kwargs = dict(attack="fgsm", probes=False, large_eps=None, batch_size=16, device="cpu")

    start = time.perf_counter()
    model, _ = load_checkpoint(ckpt)
    reused = evaluate_robustness(model, _dataset(records), eps=EPS, **kwargs)
    t_reuse = time.perf_counter() - start

    start = time.perf_counter()
    naive = []
    for e in EPS:  # what a shell loop over `arfl-studio attack --eps E` does
        model, _ = load_checkpoint(ckpt)
        naive.append(evaluate_robustness(model, _dataset(records), eps=[e], **kwargs))
    t_naive = time.perf_counter() - start

    for e, r in zip(EPS, naive):
        assert torch.allclose(torch.from_numpy(r.adversarial_logits[e]), torch.from_numpy(reused.adversarial_logits[e]), atol=1e-5)
    print(
        f"\neps sweep of {len(EPS)} values on {len(records)} demo DICOMs (64x64, FGSM, CPU): "
        f"reuse {t_reuse:.2f} s, reload per eps {t_naive:.2f} s, ratio {t_naive / t_reuse:.2f}x"
    )
    assert t_reuse < 0.6 * t_naive


def test_saliency_time_per_method_224_cpu():
    torch.manual_seed(0)
    model = build_model(ModelSpec(backbone="small_cnn", in_channels=3, width=16)).eval()
    image = torch.rand(3, 224, 224)
    times = {}
    for method in METHODS:
        saliency_map(model, image, method)  # warm-up
        start = time.perf_counter()
        for _ in range(3):
            saliency_map(model, image, method)
        times[method] = (time.perf_counter() - start) / 3
    print(
        "\nsaliency, one 224x224 image, small_cnn width 16, CPU, 1 thread: "
        + ", ".join(f"{m} {t * 1000:.0f} ms" for m, t in times.items())
        + " (smoothgrad 16 samples, integrated gradients 32 steps)"
    )
    # SmoothGrad and IG are n forward/backward passes batched: far less than n times a plain gradient
    assert times["gradient"] < times["smoothgrad"] < 16 * times["gradient"] * 2
    assert times["integrated-gradients"] < 32 * times["gradient"] * 2


def test_per_step_progress_and_cancel_polling_cost_little():
    """The per-step hook (progress event throttled to a few per second, cancel flag polled) against none."""
    import threading

    torch.manual_seed(0)
    model = build_model(ModelSpec(backbone="small_cnn", in_channels=1, width=8)).eval()
    x, y = torch.rand(32, 1, 64, 64), (torch.arange(32) % 2).float()
    kwargs = dict(attack="pgd", eps=[0.01], steps=20, probes=False, large_eps=None, device="cpu")
    evaluate_robustness(model, x, y, **dict(kwargs, steps=1))  # warm-up
    times = {}
    for name, extra in (("none", {}), ("hook", {"callback": lambda e: None, "cancel": threading.Event()})):
        start = time.perf_counter()
        for _ in range(2):
            evaluate_robustness(model, x, y, **kwargs, **extra)
        times[name] = (time.perf_counter() - start) / 2
    print(
        f"\nPGD-20, 32 images 64x64, small_cnn width 8, CPU: without progress/cancel {times['none']:.2f} s, "
        f"with them {times['hook']:.2f} s, ratio {times['hook'] / times['none']:.3f}"
    )
    assert times["hook"] < 1.1 * times["none"]


@pytest.mark.timeout(3600)  # ~4 min on an idle 2-core machine, 12 min when it is shared
def test_attack_table_on_phantom_models():
    """Model x eps x attack -> accuracy % / AUC, the worst-case ensemble beside its members, and the
    warnings each model raises (docs/attacks.md, "Sanity checks"). A tiny CNN on blob images, the same CNN
    with logits x 1e4, behind a saturating tanh staircase, and behind a floor quantiser.

    Run: pytest -m benchmark tests/benchmarks/test_bench_evaluation.py -k phantom -s
    """
    from arfl_studio.evaluation.attacks import run_attack
    from arfl_studio.evaluation.report import threshold_metrics
    from arfl_studio.evaluation.synthetic import (
        QuantizedInput,
        ScaledLogit,
        StaircaseInput,
        blob_images,
        train_tiny_cnn,
    )
    from arfl_studio.training.metrics import predict_logits

    torch.manual_seed(0)
    x, y = blob_images(96, size=24, seed=1)
    base = train_tiny_cnn(x, y, epochs=8, width=4)
    xt, yt = blob_images(32, size=24, seed=2)
    models = {
        "standard": base,
        "logit x1e4": ScaledLogit(base, 1e4),
        "staircase tanh(1000x)": StaircaseInput(base, 8),
        "floor quantiser": QuantizedInput(base, 8),
    }
    eps_list, steps, restarts, queries = [1e-3, 1e-2, 3e-2], 20, 2, 300
    attacks = {
        "fgsm": ("fgsm", {}),
        "pgd": ("pgd", {}),
        "apgd-ce": ("apgd", dict(loss="ce", steps=steps)),
        "apgd": ("apgd", dict(steps=steps)),
        "pgd-strong": ("pgd-strong", dict(steps=steps, restarts=restarts)),
        "square": ("square", dict(queries=queries)),
        "worst": ("worst", dict(steps=steps, restarts=restarts, queries=queries)),
    }

    def metrics(model, x_adv):
        m = threshold_metrics(yt.numpy(), predict_logits(model, x_adv).numpy())
        return f"{100 * m['accuracy']:.1f} / {m['auc']:.3f}", m

    lines = ["| model | eps | clean | " + " | ".join(attacks) + " |", "|---|---|---|" + "---|" * len(attacks)]
    checks = ["| model | attack | warnings | large-eps check | zero-gradient pixels |", "|---|---|---|---|---|"]
    for name, model in models.items():
        clean, _ = metrics(model, xt)
        for e in eps_list:
            cells, members = [], {}
            for attack, (kind, kw) in attacks.items():
                extra = {"members_out": members} if kind == "worst" else {}
                x_adv = run_attack(model, xt, yt, kind, e, generator=torch.Generator().manual_seed(0), **kw, **extra)
                text, m = metrics(model, x_adv)
                cells.append(text)
            worst = metrics(model, x_adv)[1]
            for member, x_m in members.items():  # the ensemble is never weaker than its own members
                m = metrics(model, x_m)[1]
                assert worst["auc"] <= m["auc"] + 1e-9 and worst["accuracy"] <= m["accuracy"] + 1e-9, (name, e, member)
            lines.append(f"| {name} | {e:g} | {clean} | " + " | ".join(cells) + " |")
        for attack in ("pgd", "worst"):
            kw = dict(steps=steps, restarts=restarts) if attack == "worst" else {}
            report = evaluate_robustness(model, xt, yt, attack=attack, eps=eps_list, queries=queries, device="cpu", **kw)
            big = report.large_eps_check
            checks.append(
                f"| {name} | {attack} | {', '.join(w.name for w in report.warnings) or 'none'} | "
                f"eps {big['eps']:g} ({big['attack']}): AUC {big['auc']:.3f}, accuracy "
                f"{100 * big['accuracy']:.1f} % (trivial {100 * big['trivial_accuracy']:.1f} %) | "
                f"{100 * report.gradient_stats['zero_pixel_fraction_mean']:.1f} % |"
            )
    print("\naccuracy % / AUC, 32 held-out blob images 24x24, tiny CNN width 4\n" + "\n".join(lines))
    print("\n" + "\n".join(checks))
