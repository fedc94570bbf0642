"""Smoke test of the PyInstaller bundle (opt-in: ``python packaging/build.py`` then
``python -m pytest -m frozen tests/distribution/test_frozen.py``). It proves the frozen app
carries what only shows up at run time: subcommands found by pkgutil, the JPEG 2000,
JPEG-LS and RLE decoder plugins (the demo set cycles through all three), spawn workers,
the example configs and the Qt platform plugins for the screenshots."""

import json
import os
import subprocess
from pathlib import Path

import pydicom
import pytest

import tomli_w

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = Path(os.environ.get("ARFL_FROZEN_APP", ROOT / "dist" / "arfl-studio" / ("arfl-studio.exe" if os.name == "nt" else "arfl-studio")))

pytestmark = pytest.mark.frozen


@pytest.fixture(scope="module")
def app():
    if not BUNDLE.is_file():
        pytest.fail(f"no frozen app at {BUNDLE}: build it with python packaging/build.py (or set ARFL_FROZEN_APP)")
    return BUNDLE


def _run(app, *args, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", ARFL_STUDIO_DATA=str(Path(cwd) / "data"))
    result = subprocess.run([str(app), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def test_frozen_app_runs_the_main_jobs(app, tmp_path):
    from arfl_studio import __version__

    assert __version__ in _run(app, "--version", cwd=tmp_path).stdout

    demo = tmp_path / "demo"
    _run(app, "demo-data", str(demo), "--patients", "8", cwd=tmp_path)
    _run(app, "scan", str(demo), "--verify", "--workers", "2", "--json", "scan.json", cwd=tmp_path)
    scan = json.loads((tmp_path / "scan.json").read_text())
    syntaxes = {str(pydicom.dcmread(demo / image["path"], stop_before_pixels=True).file_meta.TransferSyntaxUID) for image in scan["images"]}
    assert {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.80"} <= syntaxes, syntaxes
    assert scan["verified"] and not scan["rejected"], scan["rejected"]  # every file decoded in the bundle

    config = {
        "name": "frozen-smoke",
        "methods": ["A"],
        "data": {"root": str(demo)},
        "preprocess": {"size": [32, 32], "channels": 1},
        "model": {"backbone": "small_cnn", "in_channels": 1, "width": 4},
        "training": {"epochs": 1, "batch_size": 8, "workers": 2},  # spawn DataLoader workers, frozen
        "cv": {"folds": 2},
        "evaluation": {"kind": "fgsm", "eps": 1e-3},
    }
    (tmp_path / "smoke.toml").write_text(tomli_w.dumps(config))
    _run(app, "run", "smoke.toml", "--fold", "0", "--out", "run", "--quiet", cwd=tmp_path)
    assert (tmp_path / "run" / "A").is_dir()

    shots = tmp_path / "shots"
    _run(app, "--screenshot", str(shots), cwd=tmp_path, timeout=1800)
    assert len(list(shots.glob("*.png"))) >= 4


def _startup_seconds(command: list[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(QT_QPA_PLATFORM="offscreen", ARFL_STUDIO_DATA=str(cwd / "data"))
    out = subprocess.run([*command, "--startup-probe"], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
    return float(out.split("main window shown ")[1].split(" s")[0])


@pytest.mark.benchmark
def test_startup_to_main_window_frozen_vs_python(app, tmp_path):
    """Best of 3, interleaved, offscreen: the frozen bundle against ``python -m arfl_studio``."""
    import sys

    frozen, source = [], []
    for _ in range(3):
        frozen.append(_startup_seconds([str(app)], tmp_path))
        source.append(_startup_seconds([sys.executable, "-m", "arfl_studio"], tmp_path))
    ratio = min(frozen) / min(source)
    print(f"\nstart-up to the main window: frozen {min(frozen):.2f} s, python -m {min(source):.2f} s, ratio {ratio:.2f}x")
    assert ratio < 2.0  # a bundle that unpacks or scans at start would show here
