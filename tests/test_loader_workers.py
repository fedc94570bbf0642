"""Issue 26 item 13: results must not depend on the number of DataLoader workers."""

from __future__ import annotations

import json

import torch

from arfl_studio.experiments import run_access, run_experiment
from test_experiments import tiny_config


def test_worker_processes_do_not_change_the_trained_model_or_its_auc(tmp_path):
    # Method F draws PGD random starts from the global RNG: a loader that also drew from it on
    # some passes and not on others (single-process vs persistent workers) changed every later draw.
    runs = {}
    for workers in (0, 1):
        out = tmp_path / f"w{workers}"
        run_experiment(tiny_config(training={"epochs": 2, "workers": workers}, methods=["F"], data={"synthetic_samples": 16}), out)
        runs[workers] = out
    for fold in (0, 1):
        a = torch.load(run_access.fold_checkpoint(runs[0], "F", fold), weights_only=True)
        b = torch.load(run_access.fold_checkpoint(runs[1], "F", fold), weights_only=True)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"fold {fold} weights differ"
        results = [json.loads((run / "F" / f"fold_{fold}" / "manifest.json").read_text())["results"] for run in runs.values()]
        assert results[0]["standard_auc"] == results[1]["standard_auc"]
        assert results[0]["adversarial_auc"] == results[1]["adversarial_auc"]
