"""The experiment runner end to end on the demo data (tiny images, 2 folds, 1 epoch) and its resume."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path

import pytest
import torch

from arfl_studio.cli import main as cli_main
from arfl_studio.experiments import (
    ExperimentError,
    FoldEvent,
    FoldFinished,
    collect,
    fold_records,
    load_config,
    load_fold_model,
    run_experiment,
)
from arfl_studio.experiments.fold_optimizer import epoch_lr
from arfl_studio.experiments.runner import RESUME_FORMAT
from arfl_studio.models.dual_bn import has_dual_bn
from arfl_studio.training.events import StepEvent
from arfl_studio.training.methods import SettingError

PAPER_KEYS = list("ABCDEFGHI")


def tiny_config(**overrides) -> dict:
    config = {
        "name": "tiny",
        "data": {"source": "synthetic", "synthetic_samples": 24, "synthetic_size": [32, 32]},
        "preprocess": {"size": [32, 32], "channels": 1, "crop": "none"},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "device": "cpu", "seed": 3},
        "cv": {"folds": 2, "seed": 0},
        "evaluation": {"eps": 1e-3, "steps": 3},
        "methods": [{"key": "F", "attack": {"steps": 2}}],
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(config.get(section), dict):
            config[section] = {**config[section], **values}
        else:
            config[section] = values
    return config


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from arfl_studio.data import generate_demo_dataset

    return Path(generate_demo_dataset(tmp_path_factory.mktemp("demo") / "cmmd", patients=8, size=(64, 52), seed=0))


def demo_config(demo_root: Path, cache: Path, methods, epochs=1) -> dict:
    return tiny_config(
        name="nine-methods",
        data={"source": None, "demo": True, "demo_dir": str(demo_root), "cache_dir": str(cache)},
        training={"epochs": epochs, "batch_size": 8},
        methods=methods,
    )


def test_nine_methods_on_demo_data_write_every_file_and_all_tables(demo_root, tmp_path):
    """The acceptance run: A-I on the demo dataset, small CNN, tiny images, 2 folds."""
    out = tmp_path / "run"
    methods = [{"key": k, "attack": {"steps": 2}} for k in PAPER_KEYS]
    config = demo_config(demo_root, tmp_path / "cache", methods)
    for axis in ("data",):
        config[axis].pop("source")
    events = []
    result = run_experiment(config, out, callback=events.append)
    assert result.status == "finished"
    for name in ("config.toml", "manifest.json", "splits.json", "results.json"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["data_fingerprint"].startswith("sha256:")
    assert {"torch", "arfl_studio", "python"} <= set(manifest["versions"])
    for key in PAPER_KEYS:
        for fold in (0, 1):
            folder = out / key / f"fold_{fold}"
            for name in ("metrics.jsonl", "manifest.json", "model.pt", "model.json"):
                assert (folder / name).is_file(), folder / name
            lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
            assert len(lines) == 1 and {"epoch", "losses", "standard_auc", "adversarial_auc"} <= set(lines[0])
            fm = json.loads((folder / "manifest.json").read_text())
            assert fm["status"] == "finished" and 0 <= fm["results"]["standard_auc"] <= 1
    # DSBN: dual BN switched on automatically, clean route reported, oracle separately labelled
    model, spec = load_fold_model(out, "G", 0)
    assert spec.dual_bn and has_dual_bn(model)
    g = next(m for m in result.results["methods"] if m["key"] == "G")
    assert "oracle" in g["oracle_adversarial_auc"]["label"]
    assert all("oracle_adversarial_auc" not in m for m in result.results["methods"] if m["key"] != "G")
    # results document
    f = next(m for m in result.results["methods"] if m["key"] == "F")
    assert set(f) >= {"key", "method", "standard_auc", "adversarial_auc", "mean_auc", "p_values"}
    assert len(f["standard_auc"]["per_fold"]) == 2 and f["standard_auc"]["mean"] is not None
    assert set(f["p_values"]["mean_auc"]) == set(PAPER_KEYS) - {"F"}
    # per-image out-of-fold predictions: pooled AUC with its DeLong interval, paired DeLong tests
    splits = json.loads((out / "splits.json").read_text())
    for fold in (0, 1):
        predictions = json.loads((out / "F" / f"fold_{fold}" / "predictions.json").read_text())
        assert predictions["index"] == splits["test_indices"][fold] and len(predictions["adversarial_logit"]) == len(predictions["label"])
    pooled = f["pooled_oof"]["standard_auc"]
    assert pooled["n_folds"] == 2 and pooled["n"] == sum(len(t) for t in splits["test_indices"])
    assert pooled["lo"] <= pooled["auc"] <= pooled["hi"] and 0 <= f["delong"]["adversarial_auc"]["A"]["p"] <= 1
    # events for the GUI
    assert any(isinstance(e, FoldEvent) and isinstance(e.event, StepEvent) for e in events)
    assert sum(isinstance(e, FoldFinished) for e in events) == 18
    # held-out records are the run's own and patient-disjoint
    train, test = fold_records(out, 0)
    assert {r.patient_id for r in train}.isdisjoint({r.patient_id for r in test})
    # tables in all four formats through the CLI
    for fmt in ("csv", "xlsx", "md", "tex"):
        path = tmp_path / f"table.{fmt}"
        assert cli_main(["table", str(out), "--format", fmt, "--out", str(path)]) == 0
        assert path.stat().st_size > 0
    assert "\\toprule" in (tmp_path / "table.tex").read_text()
    assert "I. MIRST" in (tmp_path / "table.md").read_text()


def _fold_results(out: Path, key: str, folds=(0, 1)) -> list[dict]:
    return [json.loads((out / key / f"fold_{k}" / "manifest.json").read_text())["results"] for k in folds]


def _state(out: Path, key: str, fold: int) -> dict:
    return torch.load(out / key / f"fold_{fold}" / "model.pt", weights_only=True)


@pytest.mark.parametrize("key", ["F", "H"])
def test_cancelled_run_resumes_to_the_same_results(tmp_path, key):
    # the cosine schedule is set from the epoch: the resumed fold continues the same learning rates
    config = tiny_config(training={"epochs": 3, "lr_schedule": "cosine"}, methods=[{"key": key, "attack": {"steps": 2}}])
    reference = tmp_path / "uninterrupted"
    run_experiment(config, reference)

    out = tmp_path / "interrupted"
    cancel = threading.Event()

    def stop_mid_fold(event):  # fold 1 is cancelled after the first step of its second epoch
        if isinstance(event, FoldEvent) and isinstance(event.event, StepEvent) and event.fold == 1 and event.event.epoch == 1:
            cancel.set()

    first = run_experiment(config, out, callback=stop_mid_fold, cancel=cancel)
    assert first.status == "cancelled"
    assert json.loads((out / key / "fold_0" / "manifest.json").read_text())["status"] == "finished"
    fold1 = json.loads((out / key / "fold_1" / "manifest.json").read_text())
    assert fold1["status"] == "cancelled" and fold1["epochs_completed"] == 1
    resume = torch.load(out / key / "fold_1" / "resume.pt", weights_only=True)
    assert resume["format"] == RESUME_FORMAT and resume["epoch"] == 1
    finished_before = (out / key / "fold_0" / "model.pt").stat().st_mtime_ns

    second = run_experiment(config, out)
    assert second.status == "finished"
    assert (out / key / "fold_0" / "model.pt").stat().st_mtime_ns == finished_before  # finished fold kept
    assert json.loads((out / key / "fold_1" / "manifest.json").read_text())["resumed_from_epoch"] == 1
    assert not (out / key / "fold_1" / "resume.pt").exists()
    for a, b in zip(_fold_results(out, key), _fold_results(reference, key)):
        assert a["standard_auc"] == pytest.approx(b["standard_auc"], abs=1e-6)
        assert a["adversarial_auc"] == pytest.approx(b["adversarial_auc"], abs=1e-6)
    for name, tensor in _state(reference, key, 1).items():
        assert torch.allclose(tensor.float(), _state(out, key, 1)[name].float(), atol=1e-6), name
    lines = (out / key / "fold_1" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert [json.loads(line)["lr"] for line in lines] == [epoch_lr(1e-3, "cosine", e, 3) for e in range(3)]


def test_fold_jobs_then_collect_equal_a_full_run(tmp_path):
    config = tiny_config(training={"epochs": 1})
    full = tmp_path / "full"
    run_experiment(config, full)
    jobs = tmp_path / "jobs"
    statuses = []
    for fold in (1, 0):  # e.g. two SLURM array tasks
        result = run_experiment(config, jobs, folds=[fold])
        assert result.status == "partial"
        statuses.append(json.loads((jobs / "manifest.json").read_text()))
    # the last job's finished fold marks the run finished, without a collect (issue 27)
    assert statuses[0]["status"] == "partial" and statuses[0]["folds_finished"] < statuses[0]["folds_declared"]
    assert statuses[1]["status"] == "finished" and statuses[1]["folds_finished"] == statuses[1]["folds_declared"]
    assert (jobs / "jobs" / "job_fold0.json").is_file()
    assert cli_main(["collect", str(jobs), "--json", str(tmp_path / "c.json")]) == 0
    merged = json.loads((jobs / "results.json").read_text())
    reference = collect(full, write=False)
    assert merged["complete"]
    assert merged["methods"][0]["standard_auc"]["per_fold"] == pytest.approx(reference["methods"][0]["standard_auc"]["per_fold"])


def test_sweep_points_and_figures(tmp_path):
    config = tiny_config(training={"epochs": 1}, sweep={"base": "F", "mix_ratio": [0.25, 0.75], "robust_weight": [1.0]})
    loaded = load_config(config)
    assert [p["key"] for p in loaded.sweep_points()] == ["F_r0.25_lam1", "F_r0.75_lam1"]
    out = tmp_path / "sweep"
    run_experiment(config, out, points=[1])
    run_experiment(config, out, points=[0])
    results = collect(out)
    assert results["complete"] and results["sweep"]["mix_ratio"] == [0.25, 0.75]
    assert [m["params"]["mix_ratio"] for m in results["methods"]] == [0.25, 0.75]
    for suffix in ("png", "svg", "pdf"):
        path = tmp_path / f"fig.{suffix}"
        assert cli_main(["figure", str(out), "--kind", "ratio", "--out", str(path)]) == 0
        assert path.stat().st_size > 1000
    assert cli_main(["figure", str(out), "--kind", "epsilon", "--out", str(tmp_path / "e.png")]) == 1


def test_run_command_writes_json_and_config_reruns(tmp_path):
    import tomli_w

    config_path = tmp_path / "c.toml"
    config_path.write_text(tomli_w.dumps(tiny_config(training={"epochs": 1}, methods=["A"])))
    out = tmp_path / "out"
    assert cli_main(["run", str(config_path), "--out", str(out), "--json", str(tmp_path / "r.json"), "--quiet"]) == 0
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["status"] == "finished" and document["methods"][0]["key"] == "A"
    # the run folder's own config re-runs (nothing left to do) and a different config is refused
    assert cli_main(["run", str(out / "config.toml"), "--out", str(out), "--quiet"]) == 0
    config_path.write_text(tomli_w.dumps(tiny_config(training={"epochs": 2}, methods=["A"])))
    assert cli_main(["run", str(config_path), "--out", str(out), "--quiet"]) == 1


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(SettingError, match="folds"):
        load_config(tiny_config(cv={"folds": 1}))
    with pytest.raises(SettingError, match="unknown settings in \\[training\\]"):
        load_config(tiny_config(training={"epoch": 3}))
    with pytest.raises(SettingError, match="unknown method"):
        load_config(tiny_config(methods=["Z"]))
    with pytest.raises(SettingError, match="mix_ratio"):
        load_config(tiny_config(methods=[{"key": "mine", "mix_ratio": 2.0}]))
    custom = load_config(
        tiny_config(
            methods=[
                {"key": "mine", "mix_ratio": 0.3, "robust_weight": 2.0, "robust_variant": "batch-correlation", "attack": {"kind": "fgsm"}}
            ]
        )
    )
    assert custom.methods[0].attack.kind == "fgsm" and custom.methods[0].mix_ratio == 0.3
    preset = load_config(tiny_config(methods=[{"key": "F2", "preset": "F", "robust_weight": 1.0}])).methods[0]
    assert preset.mix_ratio == 0.5 and preset.robust_weight == 1.0 and preset.key == "F2"


def test_non_finite_loss_stops_with_epoch_and_step(tmp_path, monkeypatch):
    import arfl_studio.experiments.fold_run as fold_run

    real = fold_run.compute_loss

    def diverged(*args, **kwargs):  # what a far too large lr does (lr = 1e30 is now refused by the config)
        terms = real(*args, **kwargs)
        return dataclasses.replace(terms, total=terms.total * float("nan"))

    monkeypatch.setattr(fold_run, "compute_loss", diverged)
    config = tiny_config(training={"epochs": 1}, methods=["A"])
    with pytest.raises(ExperimentError, match="epoch 1, step"):
        run_experiment(config, tmp_path / "nan")
    fold = json.loads((tmp_path / "nan" / "A" / "fold_0" / "manifest.json").read_text())
    assert fold["status"] == "failed" and fold["failed_epoch"] == 1
    assert json.loads((tmp_path / "nan" / "manifest.json").read_text())["status"] == "failed"


def test_out_of_memory_ends_the_run_with_advice(tmp_path, monkeypatch):
    import arfl_studio.experiments.fold_run as fold_run

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(fold_run, "train", oom)
    with pytest.raises(ExperimentError, match="smaller \\[training\\] batch_size"):
        run_experiment(tiny_config(methods=["A"]), tmp_path / "oom")
    fold = json.loads((tmp_path / "oom" / "A" / "fold_0" / "manifest.json").read_text())
    assert fold["status"] == "failed" and "batch_size" in fold["message"]


def test_missing_imagenet_weights_fail_clearly(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    config = tiny_config(model={"backbone": "vgg16", "in_channels": 1, "pretrained": True, "width": 16}, methods=["A"])
    with pytest.raises(ExperimentError, match="never downloads"):
        run_experiment(config, tmp_path / "vgg")


def test_example_configs_load():
    root = Path(__file__).resolve().parents[1] / "resources" / "configs"
    tiny = load_config(root / "demo_tiny.toml")
    assert [m.key for m in tiny.methods] == PAPER_KEYS and tiny.data.demo
    paper = load_config(root / "cmmd_table3.toml")
    assert paper.model.backbone == "vgg16" and paper.model.pretrained and paper.model.fine_tune == "paper"
    assert paper.cv.folds == 5 and paper.training.epochs == 100
    f = next(m for m in paper.methods if m.key == "F")
    assert (f.mix_ratio, f.robust_weight, f.attack.kind, f.attack.steps, f.attack.eps) == (0.5, 10.0, "pgd", 7, 0.01)
    assert (paper.evaluation.kind, paper.evaluation.eps) == ("pgd", 1e-4)
    dsbn = paper.model_spec_for(next(m for m in paper.methods if m.key == "G"))
    assert dsbn.backbone == "vgg16_bn" and dsbn.dual_bn
    for name in ("real_cpu", "real_gpu"):  # the real-data recipes: lesion patches first, then whole images
        real = load_config(root / f"{name}.toml")
        assert real.model.backbone == "patch_fcn" and real.model.norm == "batch" and real.patch_stage.epochs > 0
        assert real.preprocess["crop"] == "breast-only" and real.preprocess["fit"] == "pad"
        assert real.training.threshold_holdout > 0 and real.preprocess["pixel_mm"] > 0  # threshold on held-out patients
    assert load_config(root / "real_cpu.toml").training.select_epoch == "last"  # 4-5 held-out cancers cannot pick an epoch


def test_several_training_seeds_per_fold(tmp_path):
    out = tmp_path / "seeds"
    config = tiny_config(training={"seeds": [0, 1], "epochs": 1}, methods=["A"])
    finished = []
    result = run_experiment(config, out, callback=lambda e: finished.append(e) if isinstance(e, FoldFinished) else None)
    assert result.status == "finished"
    assert sorted((e.seed, e.fold) for e in finished) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for seed in (0, 1):
        for fold in (0, 1):
            assert (out / "A" / f"seed_{seed}" / f"fold_{fold}" / "model.pt").is_file()
    entry = collect(out)["methods"][0]
    per_seed = entry["per_seed"]
    for fold in (0, 1):  # a fold's AUC is the mean over its seeds
        expected = (per_seed["0"]["standard_auc"][fold] + per_seed["1"]["standard_auc"][fold]) / 2
        assert entry["standard_auc"]["per_fold"][fold] == pytest.approx(expected)
    seed0, _ = load_fold_model(out, "A", 0)
    seed1, _ = load_fold_model(out, "A", 0, seed=1)
    assert any(not torch.equal(a, b) for a, b in zip(seed0.state_dict().values(), seed1.state_dict().values()))


def test_duplicate_seeds_are_refused(tmp_path):
    with pytest.raises(SettingError, match="seeds must be distinct"):
        load_config(tiny_config(training={"seeds": [1, 1]}))
