"""One run-access layer: single-seed, several-seed, partial and resumed runs, read the same way
by the CLI (attack), the Attack pane and the Viewer."""

from __future__ import annotations

import json
import shutil
import threading

import pytest
import torch

from arfl_studio.cli import main as cli_main
from arfl_studio.experiments import run_access, run_experiment
from arfl_studio.experiments.run_access import FoldModel
from arfl_studio.training.events import StepEvent
from test_experiments import tiny_config


@pytest.fixture(scope="module")
def seeded_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "seeds"
    run_experiment(tiny_config(training={"seeds": [0, 1], "epochs": 1}, methods=["A", "F"]), out)
    return out


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "plain"
    run_experiment(tiny_config(training={"epochs": 1}, methods=["A"]), out)
    return out


def test_several_seed_run_lists_every_seed_and_fold(seeded_run):
    models = run_access.fold_models(seeded_run)
    assert models == [FoldModel(k, f, s) for k in ("A", "F") for s in (0, 1) for f in (0, 1)]
    assert run_access.run_methods(seeded_run) == ["A", "F"]
    assert run_access.run_folds(seeded_run, "F", seed=1) == [0, 1]
    assert run_access.run_folds(seeded_run, "F") == []  # no plain fold_K folders in a several-seed run
    assert run_access.default_seed(seeded_run) == 0
    assert FoldModel("F", 1, 1).label() == "F, fold 2, seed 1"


def test_several_seed_run_loads_each_seed_own_model_threshold_and_patients(seeded_run):
    m0, spec0, test0, data0 = run_access.held_out(seeded_run, "F", 1, seed=0)
    m1, _spec1, test1, _data1 = run_access.held_out(seeded_run, "F", 1, seed=1)
    assert any(not torch.equal(a, b) for a, b in zip(m0.state_dict().values(), m1.state_dict().values()))
    assert [r.path for r in test0] == [r.path for r in test1]  # the same held-out patients for every seed
    train, test = run_access.fold_records(seeded_run, 1)
    assert {r.patient_id for r in train}.isdisjoint({r.patient_id for r in test})
    assert len(data0) == len(test0) and data0[0][0].shape[0] == spec0.in_channels
    stored = json.loads((seeded_run / "F" / "seed_1" / "fold_1" / "model.json").read_text())
    assert run_access.load_fold_threshold(seeded_run, "F", 1, seed=1).logit == pytest.approx(stored["threshold"]["logit"])
    assert run_access.run_dir_of(seeded_run / "F" / "seed_1" / "fold_1" / "model.pt") == seeded_run


def test_plain_run_and_a_missing_fold(plain_run):
    assert run_access.fold_models(plain_run) == [FoldModel("A", 0), FoldModel("A", 1)]
    assert run_access.default_seed(plain_run) is None
    assert run_access.run_dir_of(plain_run / "A" / "fold_0" / "model.pt") == plain_run
    with pytest.raises(FileNotFoundError, match="A, fold 3 has not finished"):
        run_access.fold_checkpoint(plain_run, "A", 2)
    with pytest.raises(ValueError, match="folds 0..1"):
        run_access.fold_records(plain_run, 5)


def test_partial_run_lists_only_finished_folds(plain_run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(plain_run, partial)
    (partial / "A" / "fold_1" / "model.pt").unlink()
    assert run_access.fold_models(partial) == [FoldModel("A", 0)]
    (partial / "A" / "fold_0" / "model.pt").unlink()
    assert run_access.run_methods(partial) == []


def test_resumed_run_lists_the_fold_once_it_finishes(tmp_path):
    out = tmp_path / "resumed"
    config = tiny_config(training={"epochs": 2}, methods=["A"])
    cancel = threading.Event()

    def stop_in_fold_1(event):
        if getattr(event, "fold", None) == 1 and isinstance(getattr(event, "event", None), StepEvent):
            cancel.set()

    run_experiment(config, out, callback=stop_in_fold_1, cancel=cancel)
    assert run_access.fold_models(out) == [FoldModel("A", 0)]
    run_experiment(config, out)
    assert run_access.fold_models(out) == [FoldModel("A", 0), FoldModel("A", 1)]


def test_attack_command_reads_every_seed_of_a_run(seeded_run, tmp_path, capsys):
    out = tmp_path / "attack.json"
    code = cli_main(
        ["attack", str(seeded_run), "--method", "A", "--fold", "0", "--attack", "fgsm", "--eps", "0.001", "--no-probes", "--json", str(out)]
    )
    assert code in (0, None)
    doc = json.loads(out.read_text())
    assert sorted(e["seed"] for e in doc["evaluations"]) == [0, 1]
    assert "A, fold 1, seed 1" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["[]", "{}", '{"test_indices": [], "records": []}', "not json"])
def test_a_damaged_splits_json_is_named_by_every_reader(plain_run, tmp_path, capsys, content):
    """Issue 26 item 4: splits.json that is [] (or otherwise not a splits document) ends in a message
    naming the file, from the run-access layer, the attack command and the localisation command."""
    damaged = tmp_path / "damaged"
    shutil.copytree(plain_run, damaged)
    (damaged / "splits.json").write_text(content)
    with pytest.raises(ValueError, match=r"splits\.json (is damaged|cannot be read)"):
        run_access.fold_records(damaged, 0)
    for command in (["attack", str(damaged)], ["saliency", str(damaged), "--localisation"]):
        assert cli_main(command) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and f"{damaged / 'splits.json'}" in err and len(err.strip().splitlines()) == 1


def test_summary_reports_every_seed_and_the_seed_ensemble(seeded_run, plain_run):
    from arfl_studio.evaluation.roc_stats import pooled_oof_auc
    from arfl_studio.experiments.cv_summary import seed_ensemble, summarise_run
    from arfl_studio.experiments.fold_predictions import read_predictions

    seeds = summarise_run(seeded_run)["F"]["seeds"]
    assert seeds["seeds"] == [0, 1] and seeds["folds"] == [0, 1]
    stored = {s: [read_predictions(seeded_run / "F" / f"seed_{s}" / f"fold_{k}") for k in (0, 1)] for s in (0, 1)}
    for s in (0, 1):  # each seed's pooled AUC is its own folds' predictions pooled
        expected = pooled_oof_auc([(p["label"], p["clean_logit"]) for p in stored[s]]).auc
        assert seeds["per_seed"][str(s)]["auc"] == pytest.approx(expected)
    mean_logits = [(a["label"], (a["clean_logit"] + b["clean_logit"]) / 2) for a, b in zip(stored[0], stored[1])]
    assert seeds["ensemble"]["auc"] == pytest.approx(pooled_oof_auc(mean_logits).auc)
    assert seed_ensemble(plain_run, "A") is None  # one seed: nothing to ensemble
