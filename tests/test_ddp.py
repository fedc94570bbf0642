"""Two-process DistributedDataParallel training (gloo, CPU) equals the single-process run.

Well-posed comparison: per-rank batch = global batch / 2, the same DistributedSampler
permutation in both runs (the single process uses num_replicas = 1), so each DDP step
sees exactly the single-process batch split in two. Batch norm is frozen
(``freeze_batchnorm``: running statistics, affine parameters still train) and dropout
is off, because per-replica batch statistics and per-rank dropout masks are not the
full-batch ones (on CUDA, ``sync_batchnorm`` handles BN instead; SyncBatchNorm has no
CPU kernel). Row F's PGD runs without random start, so the attack (made on the local
replica, ``model.module``) is deterministic and per-sample. The loss is a mean over
the batch, so DDP's gradient average equals the full-batch gradient.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w
import torch

from arfl_studio.experiments import run_experiment

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_config() -> dict:
    return {
        "name": "ddp",
        "data": {"source": "synthetic", "synthetic_samples": 32, "synthetic_size": [32, 32]},
        "preprocess": {"size": [32, 32], "channels": 1},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "device": "cpu", "seed": 1, "freeze_batchnorm": True, "dropout": False},
        "cv": {"folds": 2},
        "evaluation": {"eps": 1e-3, "steps": 2, "random_start": False},
        "methods": [{"key": "F", "attack": {"steps": 2, "random_start": False}}],
    }


@pytest.mark.timeout(300)
def test_two_process_ddp_matches_single_process(tmp_path):
    config_path = tmp_path / "ddp.toml"
    config_path.write_text(tomli_w.dumps(ddp_config()))
    single = tmp_path / "single"
    run_experiment(ddp_config(), single, folds=[0])

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "-m",
        "arfl_studio",
        "run",
        str(config_path),
        "--out",
        str(tmp_path / "ddp"),
        "--fold",
        "0",
        "--quiet",
    ]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    manifest = json.loads((tmp_path / "ddp" / "F" / "fold_0" / "manifest.json").read_text())
    assert manifest["world_size"] == 2 and manifest["status"] == "finished"
    reference = json.loads((single / "F" / "fold_0" / "manifest.json").read_text())
    for metric in ("standard_auc", "adversarial_auc"):
        assert manifest["results"][metric] == pytest.approx(reference["results"][metric], abs=1e-6)
    a = torch.load(single / "F" / "fold_0" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "F" / "fold_0" / "model.pt", weights_only=True)
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst < 1e-5, f"DDP weights differ from single-process weights by {worst}"
    lines = [json.loads(x) for x in (tmp_path / "ddp" / "F" / "fold_0" / "metrics.jsonl").read_text().splitlines()]
    ref_lines = [json.loads(x) for x in (single / "F" / "fold_0" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == len(ref_lines) == 2
    for x, y in zip(lines, ref_lines):
        assert x["losses"]["total"] == pytest.approx(y["losses"]["total"], abs=1e-5)
