"""One writer per run folder and fold, with real processes (issue 11.3).

Two ``run`` processes on the same --out used to both train every fold. Now a fold is
locked by the process training it; a second one says who holds it and stops; ``--fold``
jobs on different folds run side by side; a lock left by a killed process is taken
over, by exactly one of several processes racing for it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arfl_studio.experiments import ExperimentError, collect, run_experiment
from arfl_studio.experiments.runner import RunFolderInUse
from arfl_studio.run_lock import LockHeld, acquire, fold_lock_path

from test_experiments import tiny_config

ROOT = Path(__file__).resolve().parents[1]

# A run that stops inside fold training until RELEASE exists (the fold lock is held meanwhile).
HOLDER = r"""
import json, sys, time
from pathlib import Path
from arfl_studio.experiments import FoldEvent, run_experiment
config, out, folds, started, release = json.loads(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
def hold(event):
    if isinstance(event, FoldEvent) and not started.exists():
        started.write_text("training")
        deadline = time.time() + 120
        while not release.exists() and time.time() < deadline:
            time.sleep(0.05)
print(run_experiment(config, out, folds=folds, callback=hold).status)
"""

# Several processes race for one lock file; each reports won/lost in its own file. A random
# pause inside the stale check staggers them so that some judge the lock stale while another is
# already taking it over (where a take-over race lives) instead of all acting in lock step.
RACER = r"""
import json, os, random, sys, time
from pathlib import Path
from arfl_studio import run_lock
lock_path, reports, go, finish, mode = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), sys.argv[5]
if mode == "exclusive":
    run_lock.fcntl = None  # the O_EXCL + pid fallback (Windows, file systems without locks)
pid_alive = run_lock.pid_alive
def slow_pid_alive(pid):
    time.sleep(random.uniform(0, 0.01))
    return pid_alive(pid)
run_lock.pid_alive = slow_pid_alive
(reports / f"ready-{os.getpid()}").write_text("")
while not go.exists():
    time.sleep(0.002)
try:
    lock = run_lock.acquire(lock_path)
except run_lock.LockHeld as exc:
    (reports / f"lost-{os.getpid()}").write_text(str(exc))
else:
    (reports / f"won-{os.getpid()}").write_text(json.dumps(lock.taken_over))
    deadline = time.time() + 60
    while not finish.exists() and time.time() < deadline:
        time.sleep(0.02)
    lock.release()
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"holder exited early: {proc.communicate()}")
        if time.time() > deadline:
            raise AssertionError(f"{path} did not appear")
        time.sleep(0.05)


def _holder(tmp_path: Path, config: dict, out: Path, folds: list[int] | None) -> tuple[subprocess.Popen, Path]:
    started, release = tmp_path / "started", tmp_path / "release"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, json.dumps(config), str(out), json.dumps(folds), str(started), str(release)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(started, proc)
    return proc, release


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_process_on_the_same_fold_names_the_holder_and_other_folds_run_in_parallel(tmp_path, capsys):
    config = tiny_config(training={"epochs": 1}, methods=["A"])
    out = tmp_path / "run"
    proc, release = _holder(tmp_path, config, out, [0])
    try:
        with pytest.raises(RunFolderInUse, match=f"fold 0 of A .* is in use by process {proc.pid} on {socket.gethostname()}"):
            run_experiment(config, out, folds=[0])
        with pytest.raises(ExperimentError, match=f"process {proc.pid}"):  # a full run needs fold 0 too
            run_experiment(config, out)
        # the CLI says it in one line, without a traceback
        cfg = tmp_path / "config.toml"
        from arfl_studio.experiments import load_config

        cfg.write_text(load_config(config).to_toml())
        from arfl_studio.cli import main as cli_main

        assert cli_main(["run", str(cfg), "--out", str(out), "--fold", "0"]) == 1
        err = capsys.readouterr().err
        assert f"is in use by process {proc.pid}" in err and "Traceback" not in err
        # a --fold job on another fold is not blocked by the holder of fold 0
        assert run_experiment(config, out, folds=[1]).status == "partial"
    finally:
        release.write_text("")
        stdout, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    assert stdout.strip().endswith("partial")
    for fold in (0, 1):  # each fold written once, by one process: one line per epoch
        lines = (out / "A" / f"fold_{fold}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(line)["epoch"] for line in lines] == [1]
    assert collect(out)["methods"][0]["standard_auc"]["per_fold"][1] is not None
    assert not list((out).glob(".locks/*.lock")) and not (out / ".run.lock").exists()


def test_a_killed_run_leaves_a_stale_lock_that_the_next_run_takes_over(tmp_path):
    config = tiny_config(training={"epochs": 2}, methods=["A"])
    out = tmp_path / "run"
    proc, _ = _holder(tmp_path, config, out, [0])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    lock = fold_lock_path(out, "A", 0)
    assert json.loads(lock.read_text())["pid"] == proc.pid  # left behind by kill -9
    assert run_experiment(config, out, folds=[0]).status == "partial"
    assert not lock.exists()


def test_a_stale_lock_file_of_a_dead_pid_is_taken_over(tmp_path):
    lock = fold_lock_path(tmp_path, "A", 0)
    lock.parent.mkdir(parents=True)
    dead = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00", "token": "x"}
    lock.write_text(json.dumps(dead))
    for fallback in (False, True):
        import arfl_studio.run_lock as run_lock

        saved = run_lock.fcntl
        if fallback:
            run_lock.fcntl = None
            lock.write_text(json.dumps(dead))
        try:
            held = acquire(lock)
            assert held.taken_over["pid"] == dead["pid"]
            assert json.loads(lock.read_text())["pid"] == os.getpid()
            held.release()
            assert not lock.exists()
        finally:
            run_lock.fcntl = saved


@pytest.mark.parametrize("content", [b"", b'{"pid": 12', b"\x00\x00"])
@pytest.mark.parametrize("fallback", [False, True])
def test_an_empty_or_garbled_lock_left_by_a_crash_is_stale_once_a_few_seconds_old(tmp_path, monkeypatch, content, fallback):
    """Issue 26 item 18: a crash between creating and writing the lock left one that blocked the fold forever."""
    import arfl_studio.run_lock as run_lock

    if fallback:
        monkeypatch.setattr(run_lock, "fcntl", None)
    lock = fold_lock_path(tmp_path, "A", 0)
    lock.parent.mkdir(parents=True)
    lock.write_bytes(content)
    old = time.time() - 60
    os.utime(lock, (old, old))
    held = acquire(lock)
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    held.release()
    assert not lock.exists()
    if fallback and not content:  # a fresh empty file may be a live process about to write its record
        lock.write_bytes(content)
        with pytest.raises(LockHeld):
            acquire(lock)
        assert lock.read_bytes() == content


def test_a_live_holder_on_this_host_is_never_taken_over_in_fallback_mode(tmp_path, monkeypatch):
    import arfl_studio.run_lock as run_lock

    monkeypatch.setattr(run_lock, "fcntl", None)
    lock = tmp_path / "x.fold_0.lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "token": "t"}))
    with pytest.raises(LockHeld, match=f"process {os.getppid()}"):
        acquire(lock)
    assert json.loads(lock.read_text())["pid"] == os.getppid()


def test_a_late_racer_never_replaces_a_lock_just_taken_over_in_fallback_mode(tmp_path, monkeypatch):
    """The fallback's old race, step by step: B judged the dead process's lock stale, A took it over
    meanwhile; B's take-over of the content it judged stale must leave A's live lock alone."""
    import arfl_studio.run_lock as run_lock

    monkeypatch.setattr(run_lock, "fcntl", None)
    lock = tmp_path / "A.fold_0.lock"
    stale = json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "token": "stale"}).encode()
    lock.write_bytes(stale)
    a = acquire(lock)  # A takes it over
    assert a.taken_over["token"] == "stale"
    late = json.dumps(run_lock.holder_record()).encode()
    assert not run_lock._replace_stale(lock, stale, late)  # B, acting on what it read before
    assert json.loads(lock.read_text())["token"] == a.record["token"]
    with pytest.raises(LockHeld):
        acquire(lock)
    a.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_take_over_claim_blocks_while_its_claimant_lives_and_is_taken_over_when_it_died(tmp_path, monkeypatch):
    import hashlib

    import arfl_studio.run_lock as run_lock

    monkeypatch.setattr(run_lock, "fcntl", None)
    lock = tmp_path / "A.fold_0.lock"
    stale = json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "token": "stale"}).encode()
    lock.write_bytes(stale)
    claim = tmp_path / f"{lock.name}.takeover-{hashlib.sha256(stale).hexdigest()[:16]}"
    claim.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "token": "live"}))
    assert not run_lock._replace_stale(lock, stale, b"{}")  # a live process is taking it over
    assert lock.read_bytes() == stale and json.loads(claim.read_text())["token"] == "live"
    claim.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "token": "died"}))
    held = acquire(lock)  # its claimant died mid-take-over: the claim is stale too
    assert held.taken_over["token"] == "stale"
    held.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("mode", ["flock", "exclusive"])
def test_processes_racing_for_one_stale_lock_get_exactly_one_winner(tmp_path, mode):
    """Rounds of racers over a lock file left by a dead process: every round exactly one takes it
    over (and says so), the others name that one, and once it lets go no lock, claim or temporary
    file is left behind."""
    for round_ in range(3):
        folder = tmp_path / f"round_{round_}"
        lock, reports, go, finish = folder / "A.fold_0.lock", folder / "reports", folder / "go", folder / "finish"
        reports.mkdir(parents=True)
        lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname(), "token": "stale"}))
        racers = [
            subprocess.Popen([sys.executable, "-c", RACER, str(lock), str(reports), str(go), str(finish), mode], env=_env())
            for _ in range(5)
        ]
        try:
            deadline = time.time() + 60
            while len(list(reports.glob("ready-*"))) < len(racers):
                assert time.time() < deadline, "racers did not start"
                time.sleep(0.02)
            go.write_text("")
            while len(list(reports.glob("won-*")) + list(reports.glob("lost-*"))) < len(racers):
                assert time.time() < deadline, "racers did not finish"
                time.sleep(0.02)
            won = list(reports.glob("won-*"))
            assert len(won) == 1, [p.name for p in reports.iterdir()]
            winner = won[0].name.split("-")[1]
            assert json.loads(won[0].read_text())["token"] == "stale"
            assert json.loads(lock.read_text())["pid"] == int(winner)  # the winner's record is the lock
            for lost in reports.glob("lost-*"):
                assert f"process {winner}" in lost.read_text()
        finally:
            finish.write_text("")
            for racer in racers:
                racer.wait(timeout=60)
        assert all(racer.returncode == 0 for racer in racers)
        assert sorted(p.name for p in folder.iterdir()) == ["finish", "go", "reports"]  # no lock, no leftovers
