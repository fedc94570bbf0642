"""Run folders in the app: resume a stopped run, a queue of runs, and opening a past run.

- *Resume* restarts the stopped run's own folder with its own ``config.toml``; the
  engine keeps finished folds and continues an unfinished one from ``resume.pt``.
- The *queue* holds configurations captured from the settings form when they were
  queued; each starts when the previous run finished (a stop or a failure halts it).
- *Open run* replays a past run's ``metrics.jsonl`` into the Training pane's curves
  and table (as the live run would have drawn them) and shows its last attack.

The Training pane's own logic is not duplicated here: a resumed or queued run goes
through ``TrainingPane.start`` and an opened one through its event handler.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QObject, Signal


from arfl_studio.experiments.run_history import Plan, RunFolderError, latest_attack, new_run_dir, read_plan, run_status


class RunsController(QObject):
    """Resume, queue and open-run for one Training pane (and the Attack pane that shows attacks)."""

    changed = Signal()  # what can be resumed, or the queue, changed

    def __init__(self, training_pane, attack_pane=None, parent=None):
        super().__init__(parent)
        self.training = training_pane
        self.attack = attack_pane
        self.queue: list[Plan] = []
        self.stopped_run: Path | None = None
        self.opened_run: Path | None = None
        training_pane.run_finished.connect(self._on_run_finished)
        training_pane.run_started.connect(lambda _path: self._set_stopped(None))

    # ---------------------------------------------------------------- resume
    def can_resume(self) -> bool:
        return self.stopped_run is not None and not self.training.is_running()

    def resume(self, run_dir: str | Path | None = None):
        """Continue ``run_dir`` (default: the run stopped last) with its own configuration."""
        run_dir = Path(run_dir) if run_dir is not None else self.stopped_run
        if run_dir is None or self.training.is_running():
            return None
        plan = read_plan(run_dir)
        return self._start(plan)

    def _set_stopped(self, run_dir) -> None:
        self.stopped_run = Path(run_dir) if run_dir else None
        self.changed.emit()

    # ---------------------------------------------------------------- queue
    def enqueue_current(self) -> Plan:
        """Queue the settings as they are now (changing the form later does not change this run)."""
        pane = self.training
        if pane.data_section is None:
            raise RunFolderError("open a dataset first (Dataset pane) before queueing a run")
        methods = pane.form.methods()
        if not methods:
            raise RunFolderError("tick at least one method (or add a custom one) before queueing a run")
        plan = Plan(pane.form.config_dict(dict(pane.data_section)), methods)
        self.queue.append(plan)
        self.changed.emit()
        if not pane.is_running():
            self.start_next()
        return plan

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.queue):
            del self.queue[index]
            self.changed.emit()

    def start_next(self):
        if not self.queue or self.training.is_running():
            return None
        plan = self.queue.pop(0)
        self.changed.emit()
        return self._start(plan)

    def _start(self, plan: Plan):
        out = plan.out_dir or new_run_dir(self.training.runs_root)
        return self.training.start(out, config=plan.config, methods=plan.methods)

    def _on_run_finished(self, run_dir: str, status: str) -> None:
        self._set_stopped(run_dir if status == "cancelled" else None)
        if status == "finished":
            self.start_next()

    # ---------------------------------------------------------------- open a past run
    def open_run(self, run_dir: str | Path) -> Plan:
        """Show a past run's curves, table and last attack (nothing is trained or written)."""
        run_dir = Path(run_dir)
        plan = read_plan(run_dir)
        pane = self.training
        if pane.is_running():
            raise RunFolderError("a run is training: stop it before opening another run")
        pane.run_dir = run_dir
        pane._reset(plan.methods, plan.config)
        pane.replay(plan)
        status = run_status(run_dir)
        pane._on_done(SimpleNamespace(status="cancelled" if status != "finished" else "finished"))
        self.opened_run = run_dir
        if status in ("cancelled", "running", "failed"):
            self._set_stopped(run_dir)  # an interrupted run can be resumed from here
        if self.attack is not None:
            self.attack.set_run(str(run_dir))
            doc = latest_attack(run_dir)
            if doc is not None:
                try:
                    kept = doc["source"]
                    source = {"run_dir": str(run_dir), "method": str(kept["method"]), "fold": int(kept["fold"]), "seed": kept.get("seed")}
                    self.attack.show_report(doc["report"], self._held_out(run_dir, doc["source"]), source=source)
                except (KeyError, TypeError, ValueError):  # a report of an older version: the run still opens
                    pass
        return plan

    @staticmethod
    def _held_out(run_dir: Path, source: dict) -> list:
        try:
            from arfl_studio.experiments import run_access

            return run_access.fold_records(run_dir, int(source.get("fold") or 0))[1]
        except Exception:  # noqa: BLE001 - without the records the curves still show
            return []
