"""The run-level manifest's status, kept current as folds finish (``--fold`` jobs included).

Each job writes its own ``jobs/job_*.json``; the run's ``manifest.json`` says whether the
whole run is complete. Without this, the last ``--fold K`` job left it saying "partial"
until someone ran ``collect``. Call :func:`update_run_status` under the run lock
(:mod:`arfl_studio.run_lock`): after every finished fold, and from ``collect``.
"""

from __future__ import annotations

from pathlib import Path

from arfl_studio import atomic
from arfl_studio.experiments.config import ExperimentConfig
from arfl_studio.experiments.run_folder import fold_dir, now, read_json, seed_folders


def run_progress(out: Path, config: ExperimentConfig) -> tuple[int, int]:
    """(finished, declared) fold models of the run: every method or sweep point × seed × fold."""
    finished = total = 0
    for run in config.runs():
        for _, seed in seed_folders(config):
            for fold in range(config.cv.fold_count):
                total += 1
                manifest = read_json(fold_dir(out, run["key"], fold, seed) / "manifest.json")
                finished += isinstance(manifest, dict) and manifest.get("status") == "finished"
    return finished, total


def update_run_status(out: str | Path, config: ExperimentConfig) -> dict:
    """Record the fold count in ``OUT/manifest.json``, and status "finished" once every fold is.

    A missing manifest (only cluster jobs ran) is created. A status other than "finished"
    is kept until the run is complete (a running job's "running", a "cancelled" run).
    """
    out = Path(out)
    finished, total = run_progress(out, config)
    manifest = read_json(out / "manifest.json")
    if not isinstance(manifest, dict):
        manifest = {"name": config.name, "status": "partial", "collected_from_jobs": True}
    manifest.update(folds_finished=finished, folds_declared=total)
    if finished == total and manifest.get("status") != "finished":
        manifest.update(status="finished", completed=now())
    atomic.write_json(out / "manifest.json", manifest)
    return manifest
