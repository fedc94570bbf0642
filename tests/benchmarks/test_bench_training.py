"""Training speed ratios (measured in the same run; run with ``pytest -m benchmark tests/benchmarks -s``).

- ARFL on vs off for the same scheme (small CNN, CPU): <= 1.03x time per epoch.
- One engine training epoch vs a bare hand-written PyTorch loop doing the same math: <= 1.05x.
- Dual adversarial PGD-7 step vs standard step: about the 9x the passes imply, not above
  (PGD-7: 7 forward+backward passes for the attack, then clean + adversarial forward and backward).
- VGG16 at 224x224 on CUDA: one step / one epoch time (skipped without a GPU).
"""

from __future__ import annotations

import os
import time

import pytest
import torch
import torch.nn.functional as F

from arfl_studio.models import ModelSpec, build_model
from arfl_studio.training import AttackSettings, paper_method, train
from arfl_studio.training.losses import robust_loss

pytestmark = pytest.mark.benchmark

ROUNDS = 7


def _clock(device: str = "cpu"):
    """CPU: this process's CPU time (robust to other processes sharing the cores); CUDA: wall time."""
    return time.perf_counter if device != "cpu" else time.process_time


def _batches(n_batches=6, batch=32, size=64, channels=3, device="cpu"):
    g = torch.Generator().manual_seed(0)
    data = [(torch.rand(batch, channels, size, size, generator=g), (torch.arange(batch) % 2).float()) for _ in range(n_batches)]
    return [(x.to(device), t.to(device)) for x, t in data]


def _engine_epoch(model, data, method, device="cpu", amp=False) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    clock = _clock(device)
    start = clock()
    train(model, optimizer, lambda epoch: data, method, 1, device=device, amp=amp)
    if device != "cpu":
        torch.cuda.synchronize()
    return clock() - start


def _bare_epoch(model, data, eps=0.01, steps=7, lam=10.0, r=0.5) -> float:
    """Method F written by hand: PGD-7 in eval mode, then (1-r)*adv + r*clean, each BCE + lambda*L_robust."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    step_size = 2.5 * eps / steps
    start = time.process_time()
    model.train()
    for x, t in data:
        model.eval()
        x_adv = (x + (torch.rand_like(x) * 2 - 1) * eps).clamp(0, 1)
        for _ in range(steps):
            x_adv.requires_grad_(True)
            loss = F.binary_cross_entropy_with_logits(model(x_adv), t, reduction="none").sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = torch.min(torch.max(x_adv.detach() + step_size * grad.sign(), x - eps), x + eps).clamp(0, 1)
        model.train()
        y = t * 2 - 1
        logits_a, f_a = model(x_adv, return_features=True)
        logits_c, f_c = model(x, return_features=True)
        total = (1 - r) * (F.binary_cross_entropy_with_logits(logits_a, t) + lam * robust_loss(f_a, y)) + r * (
            F.binary_cross_entropy_with_logits(logits_c, t) + lam * robust_loss(f_c, y)
        )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        float(total.detach())  # the engine reads the loss back each step too
    return time.process_time() - start


def _best_of(fns: dict, rounds=ROUNDS) -> dict[str, float]:
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):  # interleaved, so load from other processes hits both sides alike
        for name, fn in fns.items():
            best[name] = min(best[name], fn())
    return best


def _small_cnn():
    torch.manual_seed(0)
    return build_model(ModelSpec(width=16))


def test_arfl_overhead_per_epoch():
    torch.set_num_threads(1)
    data = _batches()
    model = _small_cnn()
    results = {}
    for off, on in (("A", "B"), ("E", "F")):
        times = _best_of(
            {off: lambda k=off: _engine_epoch(model, data, paper_method(k)), on: lambda k=on: _engine_epoch(model, data, paper_method(k))}
        )
        results[f"{on}/{off}"] = times[on] / times[off]
        print(
            f"\nARFL on/off, r={paper_method(off).mix_ratio}: {off} {times[off]:.3f}s, {on} {times[on]:.3f}s "
            f"per epoch -> {results[f'{on}/{off}']:.3f}x"
        )
    assert results["F/E"] <= 1.03
    assert results["B/A"] <= 1.03


def test_engine_step_vs_bare_loop():
    torch.set_num_threads(1)
    data = _batches()
    model = _small_cnn()
    times = _best_of({"engine": lambda: _engine_epoch(model, data, paper_method("F")), "bare": lambda: _bare_epoch(model, data)})
    ratio = times["engine"] / times["bare"]
    print(
        f"\nengine {times['engine'] / len(data) * 1000:.1f} ms/step, bare loop {times['bare'] / len(data) * 1000:.1f} "
        f"ms/step -> {ratio:.3f}x"
    )
    assert ratio <= 1.05


def test_dual_pgd7_step_vs_standard_step():
    torch.set_num_threads(1)
    data = _batches()
    model = _small_cnn()
    times = _best_of(
        {
            "A": lambda: _engine_epoch(model, data, paper_method("A")),
            "E": lambda: _engine_epoch(model, data, paper_method("E", attack=AttackSettings(steps=7))),
        }
    )
    ratio = times["E"] / times["A"]
    print(
        f"\nstandard {times['A'] / len(data) * 1000:.1f} ms/step, dual PGD-7 {times['E'] / len(data) * 1000:.1f} "
        f"ms/step -> {ratio:.2f}x (passes imply ~9x)"
    )
    assert ratio <= 9.5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("key", ["A", "F"])
def test_vgg16_224_step_and_epoch_time_on_cuda(key):
    """VGG16 (paper fine-tuning), 224x224, batch 32, AMP. Prints step time and the time of one CMMD-sized
    epoch (about 4/5 of CMMD's 5,202 images = 4,162 training images per fold)."""
    torch.backends.cudnn.benchmark = True
    device = "cuda"
    model = build_model(ModelSpec(backbone="vgg16", fine_tune="paper")).to(device)
    data = _batches(n_batches=10, batch=32, size=224, device=device)
    _engine_epoch(model, data[:2], paper_method(key), device=device, amp=True)  # warm-up
    seconds = min(_engine_epoch(model, data, paper_method(key), device=device, amp=True) for _ in range(3))
    step = seconds / len(data)
    epoch = step * (4162 / 32)
    print(
        f"\nVGG16 224x224 {key} on {torch.cuda.get_device_name()}: {step * 1000:.1f} ms/step (batch 32), "
        f"~{epoch:.0f} s per CMMD fold epoch, ~{epoch * 100 * 5 / 3600:.1f} h for 100 epochs x 5 folds"
    )
    assert step > 0


# ----------------------------------------------------------------------------------------------
def _timed_run(config: dict, out) -> float:
    from arfl_studio.experiments import run_experiment

    start = time.perf_counter()  # wall time: the loader's worker processes are what is measured
    result = run_experiment(config, out, folds=[0])
    assert result.status == "partial"
    return time.perf_counter() - start


def test_dataloader_workers_help_not_hurt(tmp_path, monkeypatch):
    """``workers = 2`` against ``workers = 0`` on cached 224 px demo mammograms, one fold.

    Spawned workers used to start afresh every epoch (4 min 33 s against 8 s on a tiny
    config); now one persistent pool serves every fold and pass of a run. Also prints the
    old behaviour (workers re-spawned on every pass) for comparison; asserts only the current one.
    """
    import arfl_studio.experiments.run_loader as run_loader
    from arfl_studio.data import generate_demo_dataset

    root = generate_demo_dataset(tmp_path / "demo", patients=16, size=(448, 364), seed=0)
    base = {
        "name": "workers",
        "data": {"demo": True, "demo_dir": str(root), "cache_dir": str(tmp_path / "cache")},
        "preprocess": {"size": [224, 224], "channels": 1},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {"epochs": 4, "batch_size": 8, "lr": 1e-3, "device": "cpu", "validate_adversarial_every": 0, "amp": False},
        "cv": {"folds": 2},
        "evaluation": {"kind": "fgsm", "eps": 1e-3},
        "methods": ["A"],
    }

    def config(workers):
        return {**base, "training": {**base["training"], "workers": workers}}

    _timed_run(config(0), tmp_path / "warm")  # fills the preprocessing cache for every run below
    times = {}
    for rnd in range(1):
        times.setdefault(0, []).append(_timed_run(config(0), tmp_path / f"w0-{rnd}"))
        times.setdefault(2, []).append(_timed_run(config(2), tmp_path / f"w2-{rnd}"))
    w0, w2 = min(times[0]), min(times[2])
    print(f"\nworkers=0: {w0:.1f} s, workers=2 (one persistent pool per run): {w2:.1f} s, ratio {w2 / w0:.2f}")
    if os.environ.get("ARFL_BENCH_OLD_LOADER"):  # minutes: workers re-spawned on every pass, as before
        with monkeypatch.context() as patch:
            patch.setattr(run_loader, "DataLoader", _non_persistent(run_loader.DataLoader))
            old = _timed_run(config(2), tmp_path / "w2-old")
        print(f"workers=2 re-spawned every pass (before): {old:.1f} s, ratio {old / w0:.2f}")
    assert w2 <= 1.10 * w0


def _non_persistent(loader_cls):
    def make(*args, **kwargs):
        if kwargs.get("persistent_workers"):
            kwargs["persistent_workers"] = False
        return loader_cls(*args, **kwargs)

    return make
