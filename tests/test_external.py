"""External validation (``arfl-studio evaluate``, experiments/external.py) on a demo run."""

import json
import shutil

import pytest

from arfl_studio.cli import main as cli_main
from arfl_studio.experiments import run_access, run_experiment
from arfl_studio.experiments.external import ExternalError, evaluate_external, scan_external
from test_experiments import demo_config, demo_root  # noqa: F401 (module fixture)


@pytest.fixture(scope="module")
def demo_run(demo_root, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("external")
    config = demo_config(demo_root, root / "cache", [{"key": "A", "attack": {"steps": 2}}])
    config["training"]["threshold_holdout"] = 0.25
    result = run_experiment(config, root / "run", final=True)
    assert result.status == "finished" and result.finals == [("A",)]
    return root / "run"


def _held_out_folder(run_dir, demo_root, fold, target):  # noqa: F811
    """A dataset folder holding only ``fold``'s held-out patients (files copied as they are)."""
    patients = {r.patient_id for r in run_access.fold_records(run_dir, fold)[1]}
    for patient in patients:
        shutil.copytree(demo_root / "CMMD" / patient, target / "CMMD" / patient)
    shutil.copy(demo_root / "CMMD_clinicaldata_revision.xlsx", target)
    return target


def test_evaluate_reproduces_a_fold_models_stored_held_out_results(demo_run, demo_root, tmp_path):  # noqa: F811
    data = _held_out_folder(demo_run, demo_root, 0, tmp_path / "fold0")
    out = tmp_path / "external.json"
    assert cli_main(["evaluate", str(demo_run), "--data", str(data), "--json", str(out), "--device", "cpu"]) == 0
    doc = json.loads(out.read_text())
    rows = {r["model"]: r for r in doc["rows"]}
    assert list(rows) == ["A, fold 1", "A, fold 2", "A, ensemble of 2 folds", "A, final"]
    stored = json.loads((demo_run / "A" / "fold_0" / "manifest.json").read_text())["results"]
    fold = rows["A, fold 1"]
    assert fold["images"] == len(run_access.fold_records(demo_run, 0)[1])
    assert fold["auc"]["auc"] == pytest.approx(stored["standard_auc"], abs=1e-6)
    assert fold["attacked_auc"]["auc"] == pytest.approx(stored["adversarial_auc"], abs=1e-6)
    assert fold["sensitivity"] == pytest.approx(stored["standard_sensitivity"])
    assert fold["specificity"] == pytest.approx(stored["standard_specificity"])
    assert fold["threshold_logit"] == pytest.approx(stored["threshold"]["logit"])
    assert fold["auc"]["lo"] <= fold["auc"]["auc"] <= fold["auc"]["hi"]
    # these patients were held out of fold 1's model but trained fold 2's, the ensemble and the final model
    assert fold["training_overlap"] == 0
    assert all(rows[k]["training_overlap"] > 0 for k in ("A, fold 2", "A, ensemble of 2 folds", "A, final"))
    thresholds = [run_access.load_fold_threshold(demo_run, "A", k).logit for k in (0, 1)]
    assert rows["A, ensemble of 2 folds"]["threshold_logit"] == pytest.approx(sum(thresholds) / 2)
    for row in doc["rows"]:
        assert row["unit"] == "image" and row["positives"] + row["negatives"] == row["units"] == row["images"]


def test_ensemble_is_the_mean_logit_and_units_aggregate(demo_run, demo_root):  # noqa: F811
    records, _ = scan_external(demo_root)
    doc = evaluate_external(demo_run, records, attack=False, unit="image")
    rows = {r["model"]: r for r in doc["rows"]}
    mean = [(a + b) / 2 for a, b in zip(rows["A, fold 1"]["scores"], rows["A, fold 2"]["scores"])]
    assert rows["A, ensemble of 2 folds"]["scores"] == pytest.approx(mean, abs=1e-5)
    assert "attacked_auc" not in rows["A, final"]
    patients = evaluate_external(demo_run, records, attack=False, unit="patient", methods=["A"])
    assert patients["units"] == len({r.patient_id for r in records})
    assert all(r["unit"] == "patient" and r["images"] == len(records) for r in patients["rows"])
    with pytest.raises(ExternalError, match="no finished models"):
        evaluate_external(demo_run, records, methods=["Z"])
    benign = [r for r in records if r.label == 0]
    with pytest.raises(ExternalError, match="benign and malignant"):
        evaluate_external(demo_run, benign, attack=False)


SLOW_ATTACK = """
import pathlib, sys
import arfl_studio.experiments.fold_evaluation as evaluation
real, marker = evaluation._attack, pathlib.Path(sys.argv[1])
def endless(model, x, t, settings, steps, generator, cancel=None):
    marker.touch()
    return real(model, x, t, settings, 10**9, generator, cancel)
evaluation._attack = endless
from arfl_studio.cli import main
sys.argv[1:] = sys.argv[2:]
sys.exit(main())
"""


def test_ctrl_c_during_the_attacked_scoring_stops_at_once_and_writes_nothing(demo_run, demo_root, tmp_path):  # noqa: F811
    from test_hostile_cli import _ctrl_c, _one_line_error, _start, _wait_for

    marker, out = tmp_path / "attacking", tmp_path / "external.json"
    proc = _start(str(marker), "evaluate", str(demo_run), "--data", str(demo_root), "--json", str(out), code=SLOW_ATTACK)
    _wait_for(marker.exists, proc)
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 1.5, (status, seconds, err)
    line = _one_line_error(err)
    assert line == "evaluate interrupted: no model scored yet; nothing was written (the --json is written at the end)"
    assert not out.exists()
