"""A run's history, as the app shows it (no Qt): the plan that re-runs it, its status, its
epoch events replayed from ``metrics.jsonl``, and the attack reports kept with it.

*Open run* in the GUI replays these into the Training pane's curves and table as the live run
would have drawn them, and shows the last attack under the model it was made on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from arfl_studio import atomic
from arfl_studio.experiments import run_access
from arfl_studio.experiments.run_folder import fold_dir

ATTACKS_DIR = "attacks"  # attack reports the app saved for a run (the only files it writes there)


class RunFolderError(ValueError):
    """A folder that is not a run ARFL Studio can open; the message says why."""


@dataclass
class Plan:
    """A run to start: the configuration (``config.toml`` sections), its methods, where it goes."""

    config: dict
    methods: list
    out_dir: Path | None = None

    @property
    def label(self) -> str:
        keys = "".join(m.key for m in self.methods)
        return f"{keys} × {self.config['cv']['folds']} folds, {self.config['training']['epochs']} epochs"


def is_run_folder(path: str | Path) -> bool:
    """A folder a training run wrote (its ``config.toml`` and ``manifest.json``), not a dataset."""
    path = Path(path)
    return path.is_dir() and (path / "config.toml").is_file() and (path / "manifest.json").is_file()


def read_plan(run_dir: str | Path) -> Plan:
    """The plan that re-runs (resumes) ``run_dir``: its own saved configuration."""
    from arfl_studio.experiments import load_config

    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise RunFolderError(f"{run_dir} holds no config.toml: choose a run folder made by a training run")
    config = load_config(run_dir / "config.toml")
    return Plan(config.to_dict(), list(config.methods), run_dir)


def run_status(run_dir: str | Path) -> str:
    """The run's manifest status ("finished", "cancelled", "failed", "running") or "unknown"."""
    try:
        return str(json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8")).get("status", "unknown"))
    except (OSError, ValueError, AttributeError):
        return "unknown"


def _fold_folders(run_dir: Path, key: str):
    """(fold, folder) of every fold of ``key`` that has a folder (the first seed's, for several-seed runs);
    unfinished folds count too, so a stopped run's curves replay."""
    seed = run_access.default_seed(run_dir)
    for folder in sorted(fold_dir(run_dir, key, 0, seed).parent.glob("fold_*")):
        try:
            yield int(folder.name.split("_")[1]), folder
        except (IndexError, ValueError):
            continue


def replay_events(run_dir: str | Path, plan: Plan) -> list:
    """The run's epoch and fold-finished events, rebuilt from its files, in training order."""
    from arfl_studio.experiments.runner import FoldEvent, FoldFinished
    from arfl_studio.training import EpochEvent

    run_dir = Path(run_dir)
    epochs = int(plan.config["training"]["epochs"])
    events: list[FoldEvent | FoldFinished] = []
    for method in plan.methods:
        for fold, folder in _fold_folders(run_dir, method.key):
            try:
                lines = (folder / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
            except OSError:
                lines = []
            for line in lines:
                try:
                    row = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a killed run
                metrics = {
                    k: (float("nan") if row.get(k) is None else float(row[k])) for k in ("standard_auc", "adversarial_auc") if k in row
                }
                events.append(
                    FoldEvent(
                        method.key,
                        fold,
                        EpochEvent(int(row["epoch"]) - 1, epochs, dict(row.get("losses", {})), metrics, float(row.get("seconds", 0.0))),
                    )
                )
            try:
                manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            results = manifest.get("results") or {}
            if manifest.get("status") == "finished" and "standard_auc" in results:
                events.append(
                    FoldFinished(method.key, fold, float(results["standard_auc"]), float(results.get("adversarial_auc", float("nan"))))
                )
    return events


def new_run_dir(runs_root: str | Path) -> Path:
    """A fresh ``run-DATE-TIME`` folder name (queued runs can start within the same second)."""
    base = Path(runs_root) / time.strftime("run-%Y%m%d-%H%M%S")
    out, n = base, 2
    while out.exists():
        out, n = base.with_name(f"{base.name}-{n}"), n + 1
    return out


def save_attack(run_dir: str | Path, source: dict, report: dict) -> Path:
    """Keep an attack report with its run (``attacks/KEY_foldK[_seedS]_TIME.json``), atomically, without PHI.

    The record names the model it was made on (method, fold, seed folder, checkpoint relative to
    the run), so whatever is shown for it later comes from this record, not from the pane's state.
    """
    from arfl_studio.data.dicom.scrub import scrub

    seed = source.get("seed")
    which = f"{source.get('method', 'model')}_fold{int(source.get('fold', 0)) + 1}" + ("" if seed is None else f"_seed{seed}")
    path = Path(run_dir) / ATTACKS_DIR / f"{which}_{time.strftime('%Y%m%d-%H%M%S')}.json"
    record = {k: source.get(k) for k in ("method", "fold", "seed")}
    try:
        checkpoint = run_access.fold_checkpoint(run_dir, source["method"], int(source["fold"]), seed)
        record["checkpoint"] = checkpoint.relative_to(Path(run_dir)).as_posix()
    except (KeyError, TypeError, ValueError, OSError):
        record["checkpoint"] = None
    atomic.write_json(path, {"source": record, "report": scrub(report)})
    return path


def latest_attack(run_dir: str | Path) -> dict | None:
    files = sorted((Path(run_dir) / ATTACKS_DIR).glob("*.json"), key=lambda p: p.stat().st_mtime)
    for path in reversed(files):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and "report" in doc:
            return doc
    return None
