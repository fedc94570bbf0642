"""The attack command on the demo DICOM dataset and on a run folder; the 'what it must show' checks."""

import json
import re

import numpy as np
import pytest
import torch

from arfl_studio.cli import main
from arfl_studio.evaluation import evaluate_robustness
from arfl_studio.evaluation.synthetic import QuantizedInput, train_tiny_cnn
from arfl_studio.models.registry import ModelSpec, build_model, save_checkpoint

SIZE = 32
EPS = "1e-3,3e-3,1e-2,3e-2,0.1"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from arfl_studio.data import MammogramDataset, PreprocessSettings, generate_demo_dataset, scan_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=12, size=(128, 104), seed=0)
    records = scan_dataset(root).images
    dataset = MammogramDataset(records, PreprocessSettings(size=(SIZE, SIZE), channels=1))
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    y = torch.tensor(dataset.labels).float()
    # Standard training of a tiny CNN. It does not generalise to held-out demo patients in a test's
    # budget, so the attack is evaluated on the images it was trained on (clean AUC near 1): the
    # claims here are about the attack and its checks, not about generalisation.
    model = train_tiny_cnn(x, y, epochs=40, width=8, batch_size=12)
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=8)
    saved = build_model(spec)
    saved.load_state_dict(model.state_dict())
    ckpt = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "standard.pt", saved, spec)
    return root, records, x, y, model, ckpt


def test_demo_standard_cnn_curve_and_checks(demo, tmp_path):
    root, records, x, y, model, ckpt = demo
    out = tmp_path / "attack.json"
    rc = main(["attack", str(ckpt), "--data", str(root), "--size", str(SIZE), "--eps", EPS, "--probe-queries", "60", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["n"] == len(records) and doc["kind"] == "checkpoint"
    auc = [doc["clean"]["auc"]] + doc["auc_curve"]["adversarial_auc"]
    assert doc["clean"]["auc"] > 0.85
    assert all(b <= a + 1e-9 for a, b in zip(auc, auc[1:])), auc  # monotone
    assert auc[-1] <= 0.55  # chance (or below) at a large eps
    assert doc["warnings"] == []
    flipped = doc["results"][-1]["flipped"]
    assert flipped and {"index", "id", "patient_id", "label", "clean_prob", "adversarial_prob"} <= set(flipped[0])
    assert flipped[0]["id"].endswith(".dcm") and not flipped[0]["id"].startswith("/")


def test_demo_masked_model_warns(demo):
    root, records, x, y, model, ckpt = demo
    report = evaluate_robustness(QuantizedInput(model, 8), x, y, attack="pgd", eps=[float(e) for e in EPS.split(",")], probe_queries=60)
    names = {w.name for w in report.warnings}
    assert {"zero_input_gradients", "gradient_free_beats_white_box"} <= names


def test_attack_cli_errors(demo, tmp_path):
    root, records, x, y, model, ckpt = demo
    assert main(["attack", str(tmp_path / "missing.pt"), "--data", str(root)]) == 2
    with pytest.raises(SystemExit):
        main(["attack", str(ckpt)])  # no data
    with pytest.raises(SystemExit):
        main(["attack", str(ckpt), "--data", str(root), "--eps", "abc"])


def test_attack_run_folder(tmp_path):
    from arfl_studio.experiments import load_config, run_experiment

    config = load_config(
        {
            "name": "tiny",
            "data": {"source": "synthetic", "synthetic_samples": 24, "synthetic_size": [16, 16]},
            "preprocess": {"size": [16, 16], "channels": 1},
            "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
            "training": {"epochs": 1, "batch_size": 8, "device": "cpu"},
            "cv": {"folds": 2},
            "methods": [{"key": "A"}],
        }
    )
    run_dir = tmp_path / "run"
    run_experiment(config, run_dir)
    out = tmp_path / "run.json"
    rc = main(["attack", str(run_dir), "--attack", "fgsm", "--eps", "0.01,0.1", "--fold", "1", "--no-probes", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["kind"] == "run" and [(e["method_key"], e["fold"]) for e in doc["evaluations"]] == [("A", 1)]
    assert doc["evaluations"][0]["n"] == 12
    assert set(doc["summary"]["A"]["adversarial_auc_mean"]) == {"0.01", "0.1"}
    assert np.isfinite(doc["evaluations"][0]["clean"]["accuracy"])


def _strict_json(path):
    def refuse(constant):
        raise ValueError(f"non-finite number {constant} in JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_attack_cli_chooses_loss_and_sanity_budget(demo, tmp_path):
    root, records, x, y, model, ckpt = demo
    out = tmp_path / "apgd.json"
    rc = main(
        [
            "attack",
            str(ckpt),
            "--data",
            str(root),
            "--size",
            str(SIZE),
            "--attack",
            "apgd",
            "--loss",
            "both",
            "--steps",
            "3",
            "--eps",
            "0.01",
            "--probes",
            "fgsm",
            "--probe-images",
            "6",
            "--large-eps",
            "0",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    doc = _strict_json(out)
    assert doc["settings"]["loss"] == "both" and doc["settings"]["steps"] == 3
    assert set(doc["probes"]) == {"fgsm"} and doc["probe_images"] == 6 and doc["large_eps_check"] is None


def test_attack_cli_writes_valid_json_when_auc_is_undefined(demo, tmp_path, capsys):
    root, records, x, y, model, ckpt = demo
    out = tmp_path / "one.json"
    rc = main(
        [
            "attack",
            str(ckpt),
            "--data",
            str(root),
            "--size",
            str(SIZE),
            "--limit",
            "1",
            "--attack",
            "fgsm",
            "--eps",
            "0.01",
            "--no-probes",
            "--large-eps",
            "0",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    doc = _strict_json(out)  # NaN / Infinity would raise
    assert doc["clean"]["auc"] is None and "only one class" in doc["auc_note"]
    printed = capsys.readouterr().out
    assert not re.search(r"\bnan\b", printed) and "n/a" in printed and "only one class" in printed


def test_attack_cli_prints_the_sanity_estimate_first_and_the_measured_cost_after(demo, tmp_path, capsys):
    """Issue 27: the checks' cost is estimated before the attack and measured after; by default they
    cost at most the requested attack, --full-sanity runs them on every image."""
    root, records, *_, ckpt = demo
    base = ["attack", str(ckpt), "--data", str(root), "--size", str(SIZE), "--eps", "0.01", "--steps", "2", "--probe-queries", "40"]
    out = tmp_path / "a.json"
    assert main(base + ["--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index("estimated") < text.index("measured: attack") < text.index("eps")  # estimate before the table
    plan = json.loads(out.read_text())["settings"]["sanity_plan"]
    assert plan["budget"] == 1.0 and plan["probe_images"] < len(records)
    assert plan["ratio"] <= 1.0 or plan["probe_images"] == 16  # the floor of images an AUC needs
    assert main(base + ["--full-sanity", "--force", "--json", str(out)]) == 0  # replaces a.json
    assert "--full-sanity" not in capsys.readouterr().out
    full = json.loads(out.read_text())["settings"]["sanity_plan"]
    assert full["probe_images"] == len(records) and full["budget"] is None and full["ratio"] > plan["ratio"]
