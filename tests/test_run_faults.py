"""Faults during a run end with a message and a truthful manifest, never a traceback or a lost file
(issue 11: 6 truncated resume.pt, 8 disk full, 10.9 an image that stops decoding, 12 leftovers, 14 Ctrl-C)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from arfl_studio import atomic
from arfl_studio.data import MammogramReadError
from arfl_studio.experiments import ExperimentError, FoldEvent, load_config, run_experiment
from arfl_studio.experiments.sources import DataSource, open_source
from arfl_studio.training.events import StepEvent

from test_experiments import tiny_config


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _temporaries(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_disk_full_names_the_device_and_the_size_and_leaves_no_half_file(tmp_path, monkeypatch):
    """The checkpoint's temporary file is /dev/full: the kernel's ENOSPC reaches torch.save, which
    reports it as 'RuntimeError: [enforce fail at inline_container.cc] unexpected pos'."""
    real_mkstemp = tempfile.mkstemp

    def full_disk_for_checkpoints(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        if Path(name).name.startswith(".resume.pt"):
            os.close(fd)
            fd = os.open("/dev/full", os.O_WRONLY)
        return fd, name

    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    monkeypatch.setattr(atomic.tempfile, "mkstemp", full_disk_for_checkpoints)
    out = tmp_path / "run"
    with pytest.raises(ExperimentError) as caught:
        run_experiment(tiny_config(training={"epochs": 1}, methods=["A"]), out)
    message = str(caught.value)
    assert "no space left on /" in message and "needs about" in message and "MB" in message
    assert "resume.pt" in message and "unexpected pos" not in message
    fold = _json(out / "A" / "fold_0" / "manifest.json")
    assert fold["status"] == "failed" and fold["message"].startswith("no space left on")
    assert _json(out / "manifest.json")["status"] == "failed"
    assert "no space left on" in _json(out / "manifest.json")["message"]
    assert not (out / "A" / "fold_0" / "resume.pt").exists() and not _temporaries(out)


def test_no_space_from_any_write_is_reported_as_such(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(atomic.NoSpaceError, match=r"no space left on .* \(needs about 1 MB.*\) writing .*r\.json"):
        atomic.write_json(tmp_path / "r.json", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def _interrupted_fold(tmp_path: Path, config: dict) -> Path:
    """A run cancelled in fold 0's second epoch: fold 0 has resume.pt after epoch 1."""
    out = tmp_path / "run"
    cancel = threading.Event()

    def stop(event):
        if isinstance(event, FoldEvent) and isinstance(event.event, StepEvent) and event.event.epoch == 1:
            cancel.set()

    assert run_experiment(config, out, callback=stop, cancel=cancel).status == "cancelled"
    assert (out / "A" / "fold_0" / "resume.pt").is_file()
    return out


def test_a_truncated_resume_checkpoint_is_named_and_can_be_started_over(tmp_path, capsys):
    config = tiny_config(training={"epochs": 2}, methods=["A"])
    out = _interrupted_fold(tmp_path, config)
    resume = out / "A" / "fold_0" / "resume.pt"
    resume.write_bytes(resume.read_bytes()[: resume.stat().st_size // 2])
    with pytest.raises(ExperimentError, match=r"resume\.pt is damaged .*--restart-damaged"):
        run_experiment(config, out)
    assert resume.exists()  # never removed without being asked
    assert _json(out / "A" / "fold_0" / "manifest.json")["status"] == "failed"
    path = tmp_path / "config.toml"
    path.write_text(load_config(config).to_toml())
    from arfl_studio.cli import main as cli_main

    assert cli_main(["run", str(path), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "is damaged" in err and "Traceback" not in err
    assert cli_main(["run", str(path), "--out", str(out), "--quiet", "--restart-damaged"]) == 0
    lines = (out / "A" / "fold_0" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert _json(out / "manifest.json")["status"] == "finished"


def test_ctrl_c_records_cancelled_and_the_run_resumes(tmp_path):
    config = tiny_config(training={"epochs": 2}, methods=["A"])
    out = tmp_path / "run"

    def interrupt(event):
        if isinstance(event, FoldEvent) and isinstance(event.event, StepEvent) and event.event.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, out, callback=interrupt)
    run = _json(out / "manifest.json")
    assert run["status"] == "cancelled" and "Ctrl-C" in run["message"]
    assert _json(out / "A" / "fold_0" / "manifest.json")["status"] == "cancelled"
    assert not list(out.glob(".locks/*.lock"))
    assert run_experiment(config, out).status == "finished"


def test_leftover_temporaries_of_dead_processes_are_removed_and_nothing_else(tmp_path):
    config = tiny_config(training={"epochs": 1}, methods=["A"])
    out = tmp_path / "run"
    run_experiment(config, out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    fold = out / "A" / "fold_0"
    stale = [
        out / f".manifest.json.p{dead.pid}.abcdefgh.tmp",
        fold / f".manifest.json.p{dead.pid}.a1b2c3d4.tmp",
        fold / f".resume.pt.p{dead.pid}.zzzzzzzz.tmp",
    ]
    kept = [fold / "notes.tmp", fold / f".manifest.json.p{os.getppid()}.abcdefgh.tmp", out / "my.manifest.json.tmp"]
    old = time.time() - 7200
    for path in stale + kept:
        path.write_text("x")
        os.utime(path, (old, old))
    assert run_experiment(config, out).status == "finished"
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in kept)


class _OneImageStopsDecoding(DataSource):
    """The synthetic source, except that one image raises the data layer's read error."""

    def __init__(self, inner: DataSource, broken: str):
        self.inner, self.broken = inner, broken

    def records(self):
        return self.inner.records()

    def fingerprint(self):
        return self.inner.fingerprint()

    def describe(self):
        return self.inner.describe()

    def dataset(self, records):
        inner, broken = self.inner.dataset(records), self.broken

        class Flaky(torch.utils.data.Dataset):
            def __len__(self):
                return len(inner)

            def __getitem__(self, i):
                if records[i].rel_path == broken:
                    raise MammogramReadError(f"{broken}: pixel data is truncated")
                return inner[i]

        return Flaky()


def test_an_image_that_stops_decoding_mid_fold_is_skipped_with_its_reason(tmp_path):
    config = load_config(tiny_config(training={"epochs": 1}, methods=["A"]))
    inner = open_source(config)
    broken = inner.records()[3].rel_path
    result = run_experiment(config, tmp_path / "run", source=_OneImageStopsDecoding(inner, broken))
    assert result.status == "finished"
    for fold in (0, 1):  # trained on in one fold, held out in the other: each says so, once
        manifest = _json(tmp_path / "run" / "A" / f"fold_{fold}" / "manifest.json")
        assert manifest["skipped_images"] == [{"path": broken, "reason": f"{broken}: pixel data is truncated"}]


def test_splits_have_a_shareable_form_without_study_dates_or_root(tmp_path, monkeypatch):
    """Issue 11.15: splits.json keeps CMMD study folder names (dates); splits_shareable.json does not."""
    from types import SimpleNamespace

    from arfl_studio.experiments.splits import shareable_splits

    monkeypatch.setenv("ARFL_STUDIO_DATA", str(tmp_path / "data"))  # the per-user path key lives here
    records = [
        SimpleNamespace(
            rel_path=f"CMMD/D1-000{i}/07-18-2010-NA-NA-7937/1.000000-NA-70244/1-{i}.dcm",
            patient_id=f"D1-000{i}",
            laterality="L",
            view="CC",
            label=i % 2,
        )
        for i in range(4)
    ]
    config = load_config(tiny_config())
    document = shareable_splits(config, records, [[0, 1], [2, 3]])
    text = json.dumps(document)
    assert "07-18-2010" not in text and "7937" not in text and "70244" not in text and "root" not in document
    paths = [r["path"] for r in document["records"]]
    assert paths[0].startswith("CMMD/D1-0000/x") and paths[0].endswith("/1-0.dcm")
    assert len({p.split("/")[2] for p in paths}) == 1  # the same study folder gets the same name
    # a run writes it beside splits.json
    out = tmp_path / "run"
    run_experiment(tiny_config(training={"epochs": 1}, methods=["A"]), out, folds=[0])
    shared = _json(out / "splits_shareable.json")
    assert "root" not in shared and shared["test_indices"] == _json(out / "splits.json")["test_indices"]


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10  # inside the tensor data: torch.load alone would not notice
    path.write_bytes(bytes(data))


def test_a_bit_flipped_resume_checkpoint_is_reported_and_resume_falls_back_to_the_one_before(tmp_path):
    """Issue 26 item 14: every checkpoint has a checksum written with it, verified on load."""
    config = tiny_config(training={"epochs": 3}, methods=["A"])
    out = tmp_path / "run"
    cancel = threading.Event()

    def stop(event):  # in fold 0's third epoch: resume.pt after epoch 2, the previous one after epoch 1
        if isinstance(event, FoldEvent) and isinstance(event.event, StepEvent) and event.event.epoch == 2:
            cancel.set()

    assert run_experiment(config, out, callback=stop, cancel=cancel).status == "cancelled"
    fold = out / "A" / "fold_0"
    assert {"resume.pt", "resume.pt.sha256", "resume.previous.pt", "resume.previous.pt.sha256"} <= {p.name for p in fold.iterdir()}
    _flip_a_bit(fold / "resume.pt")
    torch.load(fold / "resume.pt", weights_only=True)  # the damage is silent without the checksum
    assert run_experiment(config, out).status == "finished"
    manifest = _json(fold / "manifest.json")
    assert manifest["resumed_from_epoch"] == 1
    assert "resume.pt is damaged" in manifest["resume_note"] and "checksum" in manifest["resume_note"]
    assert [json.loads(line)["epoch"] for line in (fold / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert not any(p.name.startswith("resume") for p in fold.iterdir())  # all removed once the fold finished
    assert atomic.verify_checksum(fold / "model.pt")


def test_a_bit_flipped_model_is_refused_naming_the_checksum(tmp_path):
    from arfl_studio.models.registry import CheckpointError, ModelSpec, build_model, load_checkpoint, save_checkpoint

    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    path = save_checkpoint(tmp_path / "m.pt", build_model(spec), spec)
    load_checkpoint(path)
    _flip_a_bit(path)
    with pytest.raises(CheckpointError, match=r"m\.pt is damaged: its content no longer matches the checksum"):
        load_checkpoint(path)
    atomic.checksum_path(path).unlink()  # a checkpoint from before checksums loads as before
    load_checkpoint(path)
