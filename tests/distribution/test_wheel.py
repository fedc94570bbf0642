"""The wheel carries everything the commands refer to: installed into a fresh venv, outside
the repository, it runs the bundled example (trimmed to one row and one epoch for the test budget)."""

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

import tomli_w

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: the installed setuptools builds it, no download needed
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return next(out.glob("arfl_studio-*.whl"))


def test_wheel_has_examples_icons_guide_licence_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    for config in (ROOT / "resources" / "configs").glob("*.toml"):
        assert f"arfl_studio/resources/configs/{config.name}" in names
    for icon in (ROOT / "resources" / "icons").iterdir():
        assert f"arfl_studio/resources/icons/{icon.name}" in names
    for page in (ROOT / "docs").glob("*.md"):  # the user guide of the Help menu
        assert f"arfl_studio/resources/docs/{page.name}" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    for field in (
        "License-Expression: MIT",
        "Project-URL: Homepage",
        "Classifier: Topic :: Scientific/Engineering :: Medical Science Apps.",
        "Requires-Python",
        "Description-Content-Type: text/markdown",
    ):
        assert field in metadata
    assert "Requires-Dist: torch==2.14.1" in metadata
    assert not any(n.startswith(("tests/", "resources/")) for n in names)


def lend_running_environment(python: Path) -> list[str]:
    """Put the packages of the interpreter running the tests (torch & co., gigabytes) on the
    path of the venv at ``python``, after the venv's own site-packages, so its arfl_studio
    comes first. Whichever environment runs the suite lends them — system Python, a venv or a
    conda env — which ``--system-site-packages`` would not (it lends the *base* interpreter's).
    Plain path lines: the lent folders' own .pth files, e.g. the repository's editable install,
    are not run; nothing inside the repository is lent."""
    stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}
    lent = []
    for entry in sys.path:
        path = Path(entry or ".").resolve()
        if (
            not path.is_dir()
            or path in stdlib
            or (path.parent in stdlib and path.name == "lib-dynload")
            or path.is_relative_to(ROOT)
            or (path / "arfl_studio").exists()
            or str(path) in lent
        ):
            continue
        lent.append(str(path))
    site_packages = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (Path(site_packages) / "_lent_by_arfl_tests.pth").write_text("\n".join(lent) + "\n")
    return lent


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_runs_the_example_outside_the_repository(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    lend_running_environment(python)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(ARFL_STUDIO_DATA=str(tmp_path / "data"), QT_QPA_PLATFORM="offscreen")

    def run(*args, check=True):
        result = subprocess.run(
            [str(python), "-c", "import sys; from arfl_studio.cli import main; sys.exit(main())", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check:
            assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result

    where = subprocess.run(
        [str(python), "-c", "import arfl_studio.bundled as b; print(b.example_config('demo_tiny'))"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(venv), where  # the wheel's copy, not the repository's

    wrong = run("run", "demo_tyni", check=False)
    assert wrong.returncode == 2 and "demo_tiny" in wrong.stderr  # names the examples it has

    config = tomllib.loads(Path(where).read_text())
    config["methods"] = ["A"]
    config["training"]["epochs"] = 1
    config["data"]["demo_patients"] = 8
    (work / "demo_tiny.toml").write_text(tomli_w.dumps(config))
    run("run", "demo_tiny.toml", "--out", "runs/demo", "--quiet", "--json", "result.json")
    assert (work / "runs" / "demo" / "results.json").is_file() and (work / "result.json").is_file()
