"""A file name that is not valid UTF-8 (issue 26 item 5): bytes names on Linux (b"bad\\xff.dcm") are
files like any other. A scan and a run use them, JSON shows the undecodable bytes as \\xNN (valid
UTF-8), splits.json finds the file again, and printing one never ends a command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from arfl_studio.file_names import escape_name, has_undecodable_bytes, unescape_name

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="file names are bytes on Linux only")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, str]:
    """A small demo dataset with one image copied under a name that is not UTF-8, and a junk file likewise."""
    from arfl_studio.data import generate_demo_dataset

    root = generate_demo_dataset(tmp_path_factory.mktemp("names") / "demo", patients=4, size=(96, 80), seed=0)
    image = sorted(root.rglob("1-1.dcm"))[0]
    bad = os.path.join(os.fsencode(image.parent), b"bad\xff.dcm")
    shutil.copyfile(os.fsencode(image), bad)
    (root / "CMMD" / os.fsdecode(b"junk\xfe.dcm")).write_bytes(b"not a DICOM file")
    return root, Path(os.fsdecode(bad)).relative_to(root).as_posix()


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}  # strict
    return subprocess.run([sys.executable, "-m", "arfl_studio", *args], env=env, capture_output=True, cwd=cwd, timeout=300)


@pytest.mark.parametrize("name", ["bad\udcff.dcm", "a\\b\udcfe\\x80c", "\\x41\udc80", "plain.dcm", "ünïcode.dcm"])
def test_an_escaped_name_is_valid_text_and_gives_back_the_exact_name(name):
    text = escape_name(name)
    text.encode("utf-8")  # valid UTF-8, whatever the name held
    assert unescape_name(text) == name if has_undecodable_bytes(name) else text == name


def test_scan_uses_the_file_and_writes_valid_json(dataset, tmp_path):
    root, bad = dataset
    done = _cli("scan", str(root), "--json", str(tmp_path / "scan.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert b"junk\\udcfe.dcm: not a DICOM file" in done.stdout  # listed with its reason, visibly
    doc = json.loads((tmp_path / "scan.json").read_bytes().decode("utf-8"))  # strict: valid UTF-8
    assert escape_name(bad) in [image["path"] for image in doc["images"]] and "\\xff" in escape_name(bad)
    assert any("junk\\xfe.dcm" in entry["path"] for entry in doc["rejected"])


def test_a_run_trains_on_the_file_and_splits_json_finds_it_again(dataset, tmp_path):
    from arfl_studio.experiments.sources import record_from_dict

    root, bad = dataset
    config = tmp_path / "names.toml"
    config.write_text(f"""name = "names"
methods = ["A"]
[data]
root = "{root}"
[preprocess]
size = [16, 16]
channels = 1
[model]
backbone = "small_cnn"
in_channels = 1
width = 4
[training]
epochs = 1
batch_size = 8
device = "cpu"
[cv]
folds = 2
[evaluation]
kind = "pgd"
eps = 1e-4
steps = 1
""")
    done = _cli("run", str(config), "--out", str(tmp_path / "run"), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    splits = json.loads((tmp_path / "run" / "splits.json").read_bytes().decode("utf-8"))
    entries = [r for r in splits["records"] if r.get("rel_path_escaped")]
    assert [e["rel_path"] for e in entries] == [escape_name(bad)]
    record = record_from_dict(str(root), entries[0])
    assert record.rel_path == bad and record.path.is_file()
