"""Hostile conditions met by every command (issue 26 items 1, 2, 3, 15, 16): a decoder failure,
an output that cannot be written, Ctrl-C, a parent killed with kill -9, an existing output.
Each condition is made for real; the assertions are the user's: exit status, one line without
"Traceback", nothing lost or half-written, no surviving process."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from arfl_studio import atomic
from arfl_studio.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _cli(*args: str, preexec_fn=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "arfl_studio", *args], env=_env(), capture_output=True, text=True, timeout=timeout, preexec_fn=preexec_fn
    )


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from arfl_studio.data import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=2, size=(256, 192), seed=0)


# ---------------------------------------------------------------- item 1: a decoder failure


def test_a_decoder_failure_is_one_line_naming_the_file(demo, tmp_path):
    import shutil

    import pydicom
    from pydicom.encaps import encapsulate, generate_frames

    data = tmp_path / "data"
    shutil.copytree(demo, data)
    broken = None
    for path in sorted(data.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        if "JPEG 2000" in ds.file_meta.TransferSyntaxUID.name:  # every plugin fails, each logs a traceback
            frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
            frame[60:-10] = bytes(len(frame) - 70)
            frame[:4] = bytes(4)  # no start-of-codestream marker either: older OpenJPEG decoded a zeroed body
            ds.PixelData = encapsulate([bytes(frame)])
            ds.save_as(path)
            broken = path.relative_to(data)
            break
    assert broken is not None
    done = _cli("scan", str(data), "--verify")
    assert done.returncode == 0
    assert "Traceback" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    assert f"{broken}: cannot decode pixel data" in done.stdout


# ---------------------------------------------------------------- item 2: unwritable outputs

# Every command with an output option: the outputs are checked before the command starts, so the
# other arguments need not even exist.
COMMANDS = {
    "run": ["run", "demo_tiny", "--json", "{f}"],
    "attack": ["attack", "missing.pt", "--demo", "--json", "{f}"],
    "saliency": ["saliency", "missing.pt", "missing.dcm", "--out", "{f}"],
    "scan": ["scan", "missing", "--json", "{f}"],
    "preprocess": ["preprocess", "missing", "--contact-sheet", "{f}"],
    "table": ["table", "missing", "--out", "{f}"],
    "figure": ["figure", "missing", "--kind", "ratio", "--out", "{f}"],
    "collect": ["collect", "missing", "--json", "{f}"],
    "demo-data": ["demo-data", "{f}"],
    "reproduce": ["reproduce", "two-moons", "--figure", "{f}"],
    "evaluate": ["evaluate", "missing", "--data", "missing", "--json", "{f}"],
}


def _unwritable(kind: str, tmp_path: Path) -> Path:
    if kind == "parent is a file":
        (tmp_path / "plain").write_text("x")
        return tmp_path / "plain" / "out.png"
    if kind == "a folder where a file goes":
        (tmp_path / "folder.png").mkdir()
        return tmp_path / "folder.png"
    # a read-only folder: permissions for a user; root ignores them, /proc refuses new files to anyone
    if os.geteuid() == 0:
        return Path("/proc/arfl-studio-test/out.png")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / "out.png"


@pytest.mark.parametrize("kind", ["parent is a file", "a folder where a file goes", "read-only folder"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_output_that_cannot_be_written_is_refused_before_the_work(command, kind, tmp_path, capsys):
    target = _unwritable(kind, tmp_path)
    if command == "demo-data" and kind == "a folder where a file goes":
        target = tmp_path / "plain-file"  # demo-data writes a folder: a file where the folder goes
        target.write_text("x")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    rc = main([a.replace("{f}", str(target)) for a in COMMANDS[command]])
    err = capsys.readouterr().err
    assert rc == 1
    line = _one_line_error(err)
    assert line.startswith("error: cannot write ") and str(target) in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def _file_size_limit(limit: int):
    def apply() -> None:  # a "full disk" for this process alone: writes past the limit fail (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_during_the_write_is_one_line_and_leaves_no_half_file(demo, tmp_path):
    out = tmp_path / "scan.json"
    done = _cli("scan", str(demo), "--json", str(out), preexec_fn=_file_size_limit(2000))
    assert done.returncode == 1
    line = _one_line_error(done.stderr)
    assert "no space left" in line and str(out) in line
    assert list(tmp_path.iterdir()) == []  # neither the JSON nor its temporary file


def test_a_full_disk_while_generating_demo_data_keeps_nothing(tmp_path):
    out = tmp_path / "demo"
    done = _cli(
        "demo-data", str(out), "--patients", "2", "--size", "256", "192", preexec_fn=_file_size_limit(20_000)
    )  # each image is ~100 kB
    assert done.returncode == 1
    _one_line_error(done.stderr)
    assert list(tmp_path.iterdir()) == []  # no half dataset, no hidden work folder


# ---------------------------------------------------------------- item 16: existing outputs


def test_an_existing_file_is_refused_without_force_and_replaced_with_it(demo, tmp_path, capsys):
    out = tmp_path / "mine.json"
    out.write_text("the user's own file\n")
    assert main(["scan", str(demo), "--json", str(out)]) == 1
    assert "already exists; give --force" in _one_line_error(capsys.readouterr().err)
    assert out.read_text() == "the user's own file\n"
    assert main(["scan", str(demo), "--json", str(out), "--force"]) == 0
    assert json.loads(out.read_text())["root"]


def test_a_symlink_is_written_through_and_the_mode_is_kept(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("{}\n")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    atomic.write_json(link, {"x": 1})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text()) == {"x": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


def test_a_write_onto_a_folder_is_a_write_error_naming_it(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(atomic.WriteError, match="cannot write .*out.json: it is a folder"):
        atomic.write_json(tmp_path / "out.json", {})


# ---------------------------------------------------------------- item 3: Ctrl-C


def test_the_first_ctrl_c_sets_the_cancel_event_and_a_second_forces_out():
    from arfl_studio.commands import interruption

    before = signal.getsignal(signal.SIGINT)
    interruption.reset()
    with pytest.raises(KeyboardInterrupt), interruption.ctrl_c_cancels() as cancel:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert cancel.is_set()  # no exception: the command's loops see it and stop
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        pytest.fail("the second Ctrl-C did not force out")
    assert signal.getsignal(signal.SIGINT) is before


def _ctrl_c(proc: subprocess.Popen) -> tuple[int, str, float]:
    """SIGINT to the whole process group, as a terminal's Ctrl-C; (status, stderr, seconds to exit)."""
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err, time.monotonic() - start


def _start(*args: str, code: str | None = None) -> subprocess.Popen:
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "arfl_studio", *args]
    return subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _wait_for(condition, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the condition never came"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie has ended; init reaps it
    except psutil.NoSuchProcess:
        return False


def _no_children_left(pids: list[int]) -> None:
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"processes {[p for p in pids if _alive(p)]} outlived their parent"
        time.sleep(0.1)


def test_ctrl_c_during_demo_data_keeps_nothing_and_says_so(tmp_path):
    out = tmp_path / "demo"
    proc = _start("demo-data", str(out), "--patients", "200", "--size", "256", "192")
    _wait_for(lambda: any(tmp_path.rglob("*.dcm")), proc)
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 2.0, (status, seconds, err)
    line = _one_line_error(err)
    assert line.startswith("demo-data interrupted: ") and "of 800 images generated" in line
    assert "nothing was written" in line
    assert list(tmp_path.iterdir()) == []


SLOW_VERIFY = """
import pathlib, sys, time
import arfl_studio.data.datasets.file_jobs as jobs
real, marker = jobs.read_mammogram, pathlib.Path(sys.argv[1])
def slow(path, **kwargs):
    marker.touch()
    time.sleep(0.5)
    return real(path, **kwargs)
jobs.read_mammogram = slow
from arfl_studio.cli import main
sys.argv[1:] = sys.argv[2:]
sys.exit(main())  # as the command line runs it
"""


def test_ctrl_c_during_scan_verify_stops_at_once(demo, tmp_path):
    marker = tmp_path / "decoding"
    proc = _start(str(marker), "scan", str(demo), "--verify", "--json", str(tmp_path / "scan.json"), code=SLOW_VERIFY)
    _wait_for(marker.exists, proc)
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 1.5, (status, seconds, err)
    line = _one_line_error(err)
    assert line.startswith("scan interrupted: ") and "files decoded (--verify" in line and "nothing was written" in line
    assert not (tmp_path / "scan.json").exists()


def test_ctrl_c_with_decode_workers_ends_them_without_tracebacks(demo, tmp_path):
    proc = _start("scan", str(demo), "--verify", "--workers", "2")
    parent = psutil.Process(proc.pid)
    _wait_for(lambda: len(parent.children()) >= 2, proc)  # the spawn pool is starting up
    time.sleep(0.5)
    children = [c.pid for c in parent.children(recursive=True)]
    status, err, seconds = _ctrl_c(proc)
    assert status in (0, 130), err  # 0: the scan had finished (a fast machine)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "leaked" not in err, err
    if status == 130:
        assert seconds < 2.0 and err.strip().startswith("scan interrupted: ")
    _no_children_left(children)


CTRL_C_AFTER_FINISHING = """
import atexit, os, signal, sys
from arfl_studio.cli import main


class CtrlCInTeardown:  # destroyed with __main__'s globals, after SIGINT went back to its default
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)


if sys.argv[1] == "exit-hook":
    atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))
else:
    keep = CtrlCInTeardown()
sys.argv[1:] = sys.argv[2:]
sys.exit(main())
"""


@pytest.mark.parametrize("when", ["exit-hook", "teardown"])
def test_ctrl_c_after_the_command_finished_keeps_its_status(demo, tmp_path, when):
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_AFTER_FINISHING, when, "scan", str(demo), "--json", str(tmp_path / "scan.json")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr)  # not -2 (killed by the signal)
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr, done.stderr
    assert json.loads((tmp_path / "scan.json").read_text())


def test_ctrl_c_during_attack_stops_at_once(demo, tmp_path):
    from arfl_studio.models.registry import ModelSpec, build_model, save_checkpoint

    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    checkpoint = save_checkpoint(tmp_path / "model.pt", build_model(spec), spec, preprocess={"size": [32, 32], "channels": 1})
    cache = tmp_path / "cache"
    proc = _start(
        "attack",
        str(checkpoint),
        "--data",
        str(demo),
        "--cache-dir",
        str(cache),
        "--attack",
        "pgd",
        "--steps",
        "1000000",
        "--no-probes",
        "--json",
        str(tmp_path / "attack.json"),
    )
    _wait_for(lambda: len(list(cache.rglob("*.npy"))) >= 6, proc)  # every image loaded: the attack runs
    time.sleep(1.0)
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 1.5, (status, seconds, err)
    line = _one_line_error(err)
    assert line.startswith("attack interrupted: 0 models evaluated") and "nothing was written" in line
    assert not (tmp_path / "attack.json").exists()


SLOW_PREPROCESS = """
import pathlib, sys, time
import arfl_studio.data.preprocess.transform as transform
real, marker = transform.compute_geometry, pathlib.Path(sys.argv[1])
def slow(*args, **kwargs):  # one step of a very large image
    marker.touch()
    time.sleep(0.5)
    return real(*args, **kwargs)
transform.compute_geometry = slow
from arfl_studio.cli import main
sys.argv[1:] = sys.argv[2:]
sys.exit(main())
"""


def test_ctrl_c_inside_the_preprocessing_of_one_image_stops_at_once(demo, tmp_path):
    marker, cache = tmp_path / "preprocessing", tmp_path / "cache"
    proc = _start(
        str(marker),
        "preprocess",
        str(demo),
        "--cache",
        str(cache),
        "--size",
        "32",
        "32",
        "--json",
        str(tmp_path / "pre.json"),
        code=SLOW_PREPROCESS,
    )
    _wait_for(marker.exists, proc)
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 1.5, (status, seconds, err)
    line = _one_line_error(err)
    assert line.startswith("preprocess interrupted: 0 of ") and "images preprocessed" in line and "stays in the cache" in line
    assert not (tmp_path / "pre.json").exists() and not list(cache.rglob("*.npy"))


def test_ctrl_c_during_run_keeps_the_resume_checkpoint(tmp_path):
    out = tmp_path / "run"
    env = {**_env(), "ARFL_STUDIO_DATA": str(tmp_path / "data")}  # the demo copy demo_tiny makes goes here
    proc = subprocess.Popen(
        [sys.executable, "-m", "arfl_studio", "run", "demo_tiny", "--out", str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for(lambda: any(out.rglob("resume.pt")), proc)  # an epoch is finished: training goes on
    kept = {p: p.read_bytes() for p in out.rglob("resume.pt")}
    status, err, seconds = _ctrl_c(proc)
    assert status == 130 and seconds < 1.5, (status, seconds, err)
    line = _one_line_error(err)
    assert line.startswith("run interrupted: ") and "resume.pt" in line and "re-run the same command" in line
    assert all(p.exists() for p in kept), "a finished epoch's checkpoint was lost"
    assert json.loads((out / "manifest.json").read_text())["status"] == "cancelled"


# ---------------------------------------------------------------- item 15: kill -9 of the parent

ORPHAN_PARENT = """
import os, pathlib, sys, time
import torch
from arfl_studio.data.child_processes import guarded_pool, loader_worker_init_fn

def busy(kind):  # a worker busy with an endless decode, after telling the test it started
    pathlib.Path(sys.argv[1], f"{kind}-{os.getpid()}").touch()
    time.sleep(600)

class Slow(torch.utils.data.Dataset):
    def __len__(self):
        return 4
    def __getitem__(self, i):
        busy("loader")

if __name__ == "__main__":
    with guarded_pool(2) as pool:
        futures = [pool.submit(busy, "pool") for _ in range(2)]
        loader = torch.utils.data.DataLoader(Slow(), num_workers=2, multiprocessing_context="spawn",
                                             worker_init_fn=loader_worker_init_fn())
        next(iter(loader))
"""


def test_workers_end_within_5_s_of_their_parent_being_killed(tmp_path):
    script, started = tmp_path / "parent.py", tmp_path / "started"
    script.write_text(ORPHAN_PARENT)
    started.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(script), str(started)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    parent = psutil.Process(proc.pid)
    try:
        _wait_for(lambda: len(list(started.iterdir())) >= 4, proc)  # 2 pool and 2 loader workers are busy
        workers = [int(p.name.split("-")[1]) for p in started.iterdir()]
        children = [c.pid for c in parent.children(recursive=True)]
        assert set(workers) <= set(children)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _no_children_left(children)  # the resource tracker goes with the workers (its pipe closes)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the test's own process group
        except ProcessLookupError:
            pass
