"""Runs: File → Open run shows a past run; Resume continues a stopped run in its own folder;
the queue starts runs one after another."""

import json

from arfl_studio.experiments.run_history import read_plan, replay_events, run_status

from .conftest import TINY_TRAINING, report_with_one_flip, wait_task

ONE_METHOD = dict(TINY_TRAINING, methods=("A",))


def _with_dataset(qtbot, window, demo_dir):
    pane = window.dataset_pane
    with qtbot.waitSignal(pane.scanned, timeout=60_000):
        pane.load(demo_dir)
    wait_task(qtbot, pane.task)
    qtbot.waitUntil(lambda: not pane.busy(), timeout=60_000)


def test_open_run_shows_its_curves_table_and_last_attack(qtbot, window, trained_run):
    # an attack made in the app is kept with its run ...
    attack = window.attack_pane
    attack.set_run(str(trained_run))
    attack.method_box.setCurrentText("B")
    attack.eps_edit.setText("0.01")
    attack.steps_spin.setValue(2)
    wait_task(qtbot, attack.run_attack(), timeout=300_000)
    assert attack.report is not None
    saved = sorted((trained_run / "attacks").glob("B_fold*.json"), key=lambda p: p.stat().st_mtime)  # newest last
    assert saved and json.loads(saved[-1].read_text())["report"]["n"] == attack.report["n"]
    attack.report = None
    # ... and File → Open run shows curves, table and that attack
    plan = window.open_run(trained_run)
    assert plan is not None and [m.key for m in plan.methods] == ["A", "B"]
    pane = window.training_pane
    assert pane.run_dir == trained_run and window.tabs.currentWidget() is pane
    pane.loss_plot.flush()
    pane.auc_plot.flush()
    assert pane.loss_plot.points("A") == 1 and pane.auc_plot.points("B/std") == 1  # fold 1's one epoch
    rows = {r["key"]: r for r in pane.table_model.rows}
    assert set(rows) == {"A", "B"}
    folds = [json.loads((trained_run / "A" / f"fold_{k}" / "manifest.json").read_text())["results"] for k in (0, 1)]
    mean = sum(f["standard_auc"] for f in folds) / 2
    shown = " ".join(str(v) for v in rows["A"].values())
    assert f"{100 * mean:.1f}" in shown or f"{mean:.3f}" in shown  # the run's own numbers (% or fraction)
    assert attack.run_edit.text() == str(trained_run)
    assert attack.report is not None and attack.report["n"] == json.loads(saved[-1].read_text())["report"]["n"]


def test_open_run_refuses_a_folder_that_is_not_a_run(qtbot, window, tmp_path):
    from arfl_studio.gui.dialogs import last_error

    assert window.open_run(tmp_path) is None
    qtbot.waitUntil(lambda: last_error() is not None)
    assert "config.toml" in last_error().text() and str(tmp_path) in last_error().text()


def test_stop_then_resume_continues_the_same_run_folder(qtbot, window, demo_dir):
    _with_dataset(qtbot, window, demo_dir)
    pane = window.training_pane
    pane.form.set_values(**dict(ONE_METHOD, epochs=2))
    assert not window.resume_button.isEnabled()
    first = pane.start()
    qtbot.waitUntil(lambda: bool(pane.history), timeout=120_000)  # an epoch is in: stop mid-run
    pane.stop()
    wait_task(qtbot, first)
    run_dir = pane.run_dir
    assert run_status(run_dir) == "cancelled"
    assert window.resume_button.isEnabled() and window.runs.stopped_run == run_dir
    pane.form.set_values(epochs=5)  # the form changed since: Resume uses the run's own config
    handle = window.resume_run()
    assert handle is not None and pane.run_dir == run_dir
    wait_task(qtbot, handle)
    assert handle.outcome == "done" and run_status(run_dir) == "finished"
    assert read_plan(run_dir).config["training"]["epochs"] == 2
    assert not window.resume_button.isEnabled()
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith("run-")) == []  # no new folder inside


def test_queue_runs_one_after_another(qtbot, window, demo_dir):
    _with_dataset(qtbot, window, demo_dir)
    pane = window.training_pane
    started = []
    pane.run_started.connect(started.append)
    pane.form.set_values(**ONE_METHOD)
    window.queue_run()  # starts at once: nothing is running
    pane.form.set_values(image_size=48)
    window.queue_run()  # waits for the first
    assert pane.is_running() and len(window.runs.queue) == 1
    assert "Queued: 1" in window.queue_label.text()
    qtbot.waitUntil(lambda: len(started) == 2, timeout=180_000)
    wait_task(qtbot, pane.task, timeout=180_000)
    assert len(set(started)) == 2 and all(run_status(p) == "finished" for p in started)
    sizes = [read_plan(p).config["preprocess"]["size"] for p in started]
    assert sizes == [[32, 32], [48, 48]]  # each run kept the settings it was queued with
    assert window.runs.queue == []


def test_replay_reads_every_epoch_of_every_fold(trained_run):
    plan = read_plan(trained_run)
    events = replay_events(trained_run, plan)
    epochs = [e for e in events if hasattr(e, "event")]
    finished = [e for e in events if hasattr(e, "standard_auc")]
    assert len(epochs) == 2 * 2 * 1 and len(finished) == 2 * 2


def test_open_run_shows_the_last_attack_under_its_own_model(qtbot, window, trained_run):
    from arfl_studio.experiments import run_access
    from arfl_studio.experiments.run_history import save_attack

    held_out = run_access.fold_records(trained_run, 1)[1]
    save_attack(trained_run, {"method": "B", "fold": 1, "seed": None}, report_with_one_flip({"index": 0}))
    attack = window.attack_pane
    attack.set_run(str(trained_run))
    attack.method_box.setCurrentText("A")  # the pane shows method A, fold 1 ...
    attack.fold_box.setCurrentIndex(0)
    assert window.open_run(trained_run) is not None
    # ... the opened report is B's on fold 2: the title and the selectors say so
    assert "method B" in attack.model_title() and "fold 2" in attack.model_title()
    assert "method B · fold 2" in attack.roc_plot.title_text()
    assert attack.method_box.currentText() == "B" and attack.fold_box.currentData()["fold"] == 1
    # the flipped case opens B's fold-2 model on fold 2's own held-out image
    request = attack.open_flipped(0)
    assert request["method"] == "B" and request["fold"] == 1 and request["attack"] == "fgsm"
    assert request["record"] == held_out[0]
    viewer = window.viewer_pane
    assert viewer.model_a.currentText() == "B" and window.tabs.currentWidget() is viewer
    wait_task(qtbot, viewer.task, timeout=120_000)
    assert viewer.task.outcome == "done", viewer.prediction.text()
    assert viewer.analysis is not None and "B" in viewer.analysis["case"]["models"]


def test_resume_reloads_curves_and_table_and_eta_counts_only_the_epochs_left(qtbot, window, trained_run, monkeypatch):
    from types import SimpleNamespace

    from arfl_studio.gui.panes import training_pane as module

    monkeypatch.setattr(module, "start_task", lambda *a, **k: SimpleNamespace(is_running=lambda: True, cancel=lambda: None))
    pane = window.training_pane
    plan = read_plan(trained_run)
    pane.start(trained_run, config=plan.config, methods=plan.methods)  # what Resume calls
    pane.loss_plot.flush()
    pane.auc_plot.flush()
    assert pane.loss_plot.points("A") == 1 and pane.auc_plot.points("B/std") == 1  # the run's own epochs
    rows = {r["key"]: r for r in pane.table_model.rows}
    assert rows["A"]["folds"] == "2/2" and rows["A"]["standard_auc"] != "-"
    # ETA: suppose the run had done half its work before and a quarter more took 60 s here
    pane._plan = (2, 2, 4)
    pane._done_before = 0.5
    pane._started_at = module.time.perf_counter() - 60.0
    pane._update_progress("B", 1, 0.0)  # 12 of 16 epochs done: 4 in this session, 4 left
    assert pane.eta_label.text() == "ETA 1:00"  # not 20 s, as 60 s x (4 left / 12 done) would say
    # an epoch that comes again (a fold restarted without resume.pt) replaces, not duplicates
    h = pane.history[("A", 0)]
    pane._on_event(SimpleNamespace(method_key="A", fold=0, event=module.EpochEvent(0, 1, {"total": 1.0}, {})))
    assert h["epoch"] == [1] and h["total"] == [1.0]
