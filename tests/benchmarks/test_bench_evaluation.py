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
        assert torch.allclose(torch.from_numpy(r.adversarial_logits[e]), torch.from_numpy(reused.adversarial_logits[e]),
                              atol=1e-5)
    print(f"\neps sweep of {len(EPS)} values on {len(records)} demo DICOMs (64x64, FGSM, CPU): "
          f"reuse {t_reuse:.2f} s, reload per eps {t_naive:.2f} s, ratio {t_naive / t_reuse:.2f}x")
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
    print("\nsaliency, one 224x224 image, small_cnn width 16, CPU, 1 thread: "
          + ", ".join(f"{m} {t * 1000:.0f} ms" for m, t in times.items())
          + " (smoothgrad 16 samples, integrated gradients 32 steps)")
    # SmoothGrad and IG are n forward/backward passes batched: far less than n times a plain gradient
    assert times["gradient"] < times["smoothgrad"] < 16 * times["gradient"] * 2
    assert times["integrated-gradients"] < 32 * times["gradient"] * 2
