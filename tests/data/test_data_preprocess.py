"""Preprocessing, cache, splits and the demo dataset."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from helpers_data import phantom, write_dicom

from arfl_studio.data import (
    ImageRecord,
    MammogramDataset,
    PatientLeakError,
    PreprocessSettingError,
    PreprocessSettings,
    check_no_patient_leak,
    generate_demo_dataset,
    load_splits,
    patient_folds,
    preprocess_records,
    save_splits,
    scan_dataset,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", patients=10, size=(64, 52), seed=3)


def _record(path, patient="P", label=0, side="L"):
    return ImageRecord(path=path, rel_path=path.name, patient_id=patient, laterality=side, view="CC", label=label)


def test_orientation_puts_every_chest_wall_on_the_left(tmp_path, demo):
    recs = [
        _record(write_dicom(tmp_path / "l.dcm", phantom(60, 48, chest_wall_left=True)), side="L"),
        _record(write_dicom(tmp_path / "r.dcm", phantom(60, 48, chest_wall_left=False), laterality="R"), side="R"),
    ]
    recs += scan_dataset(demo).images
    settings = PreprocessSettings(size=(32, 32), channels=1, crop="none")
    ds = MammogramDataset(recs, settings)
    for i in range(len(ds)):
        img = ds.image(i)
        assert img[:, :8].mean() > img[:, -8:].mean() + 0.05, recs[i].rel_path
    unoriented = MammogramDataset(recs[:2], PreprocessSettings(size=(32, 32), orient=False, crop="none"))
    assert unoriented.image(1)[:, :8].mean() < unoriented.image(1)[:, -8:].mean()


def test_crop_keeps_the_breast_and_sizes_are_free(tmp_path):
    img = np.zeros((80, 60), np.float32)
    img[20:60, 0:30] = 0.7
    img[2:4, 55:57] = 0.9  # a small bright label outside the breast
    path = write_dicom(tmp_path / "c.dcm", img)
    for crop in ("breast", "otsu", "threshold"):
        out = MammogramDataset([_record(path)], PreprocessSettings(size=(40, 20), crop=crop, margin=0.0)).image(0)
        assert out.shape == (40, 20)
        assert out.mean() > 0.6  # the crop is the tissue block, not the whole frame
    x, y = MammogramDataset([_record(path, label=1)], PreprocessSettings(size=(24, 16)))[0]
    assert tuple(x.shape) == (3, 24, 16) and str(x.dtype) == "torch.float32" and float(y) == 1.0
    with pytest.raises(PreprocessSettingError, match="crop"):
        PreprocessSettings(crop="magic")
    assert PreprocessSettings(size=512).size == (512, 512)
    assert PreprocessSettings.from_dict(PreprocessSettings(size=(1024, 512)).to_dict()).size == (1024, 512)


def test_cache_reuses_work_and_invalidates_only_what_it_must(tmp_path, demo):
    recs = scan_dataset(demo).images[:6]
    cache = tmp_path / "cache"
    s = PreprocessSettings(size=(32, 32))
    first = preprocess_records(recs, s, cache)
    assert (first.decoded, first.cached, first.failed) == (6, 0, [])
    again = preprocess_records(recs, s, cache)
    assert (again.decoded, again.cached) == (0, 6)
    # channels is applied at load time: nothing to recompute
    assert preprocess_records(recs, PreprocessSettings(size=(32, 32), channels=1), cache).cached == 6
    # a new size re-decodes but keeps the crop geometry
    geometry_files = sorted((cache / "geometry").rglob("*.json"))
    bigger = preprocess_records(recs, PreprocessSettings(size=(48, 40)), cache)
    assert bigger.decoded == 6 and sorted((cache / "geometry").rglob("*.json")) == geometry_files
    # a new crop invalidates
    assert preprocess_records(recs, PreprocessSettings(size=(32, 32), crop="none"), cache).decoded == 6
    # cached pixels equal what the dataset computes without a cache (to float16 precision)
    with_cache = MammogramDataset(recs, s, cache)
    without = MammogramDataset(recs, s)
    for i in range(3):
        np.testing.assert_allclose(with_cache.image(i), without.image(i), atol=1e-3)
    # the key is the file content: same bytes elsewhere hit the cache, changed bytes miss
    copy = tmp_path / "copy.dcm"
    copy.write_bytes(recs[0].path.read_bytes())
    assert preprocess_records([_record(copy)], s, cache).cached == 1
    changed = write_dicom(tmp_path / "changed.dcm")
    assert preprocess_records([_record(changed)], s, cache).decoded == 1


def test_parallel_preprocessing_matches_serial_and_reports_bad_files(tmp_path, demo):
    recs = scan_dataset(demo).images[:6]
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"garbage" * 50)
    recs = recs + [_record(bad)]
    s = PreprocessSettings(size=(32, 32), channels=1)
    serial = preprocess_records(recs, s, tmp_path / "c1", workers=1)
    parallel = preprocess_records(recs, s, tmp_path / "c2", workers=2)
    assert serial.failed == parallel.failed == [("bad.dcm", "not a DICOM file")]
    a = sorted(p.relative_to(tmp_path / "c1").as_posix() for p in (tmp_path / "c1" / "images").rglob("*.npy"))
    b = sorted(p.relative_to(tmp_path / "c2").as_posix() for p in (tmp_path / "c2" / "images").rglob("*.npy"))
    assert a == b and len(a) == 6
    for name in a:
        assert np.array_equal(np.load(tmp_path / "c1" / name), np.load(tmp_path / "c2" / name))


def test_patient_folds_have_no_leak_and_are_seeded(tmp_path, demo):
    recs = scan_dataset(demo).images
    folds = patient_folds(recs, k=3, seed=1)
    assert sorted(i for f in folds for i in f) == list(range(len(recs)))
    for f in folds:
        assert {r.label for r in (recs[i] for i in f)} == {0, 1}  # stratified
    check_no_patient_leak(recs, folds)
    assert folds == patient_folds(recs, k=3, seed=1)
    assert folds != patient_folds(recs, k=3, seed=2)
    path = save_splits(tmp_path / "splits.json", recs, folds, k=3, seed=1)
    assert load_splits(path, recs) == folds
    leaky = [list(f) for f in folds]
    moved = next(i for i in leaky[0] if sum(recs[j].patient_id == recs[i].patient_id for j in leaky[0]) > 1)
    leaky[0].remove(moved)
    leaky[1].append(moved)
    with pytest.raises(PatientLeakError, match="patient"):
        check_no_patient_leak(recs, leaky)


def test_holdout_patients_are_whole_patients_of_both_classes_and_seeded():
    from types import SimpleNamespace

    from arfl_studio.data.datasets.splits import holdout_patients

    # 30 patients with 2-4 images each; a few have one benign and one malignant breast
    recs = [
        SimpleNamespace(patient_id=f"P{p}", label=int(p % 3 == 0 or (p % 7 == 0 and i == 0))) for p in range(30) for i in range(2 + p % 3)
    ]
    held = holdout_patients(recs, 0.2, seed=4)
    held_patients = {recs[i].patient_id for i in held}
    assert held and held == sorted(held)
    assert all(r.patient_id not in held_patients for i, r in enumerate(recs) if i not in held)  # whole patients
    assert {recs[i].label for i in held} == {0, 1}
    assert 3 <= len(held_patients) <= 9  # about a fifth of 30
    assert holdout_patients(recs, 0.2, seed=4) == held and holdout_patients(recs, 0.2, seed=5) != held
    assert holdout_patients(recs, 0.0) == []
    # fewer patients of a class than the inner split needs: nothing is held out
    assert holdout_patients(recs[:12], 0.2) == []
    with pytest.raises(ValueError, match="fraction"):
        holdout_patients(recs, 1.0)


def test_demo_data_then_scan_reports_the_numbers_written(tmp_path, capsys):
    from arfl_studio.cli import main

    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--patients", "6", "--size", "48", "40", "--json", str(tmp_path / "d.json")]) == 0
    assert main(["scan", str(out), "--json", str(tmp_path / "s.json")]) == 0
    written = json.loads((tmp_path / "d.json").read_text())
    scanned = json.loads((tmp_path / "s.json").read_text())
    counts = written["counts"]
    assert scanned["layout"] == "cmmd"
    assert scanned["files"] == counts["images"] == 24
    assert scanned["counts"]["images"] == written["labelled_images"]
    assert scanned["counts"]["by_label"] == {k: v for k, v in counts["by_label"].items() if v}
    assert scanned["counts"]["unlabeled"] == counts["unlabeled"]
    assert scanned["patients"] == 6 and scanned["counts"]["patients_by_label"] == written["patients_by_label"]
    assert scanned["rejected"] == [] and scanned["labels_without_images"] == []
    assert sorted(scanned["counts"]["by_view"]) == ["CC", "MLO"]


def test_demo_files_are_deterministic_and_varied(tmp_path):
    import pydicom

    a = generate_demo_dataset(tmp_path / "a", patients=3, size=(40, 32), seed=5)
    b = generate_demo_dataset(tmp_path / "b", patients=3, size=(40, 32), seed=5)

    def digests(root):
        return {
            p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*")
            if p.is_file() and p.suffix in (".dcm", ".xlsx")
        }

    assert digests(a) == digests(b) and len(digests(a)) == 13  # the images and the clinical table
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(a.rglob("*.dcm"))]
    assert {h.Modality for h in headers} == {"MG"}
    assert {h.PresentationIntentType for h in headers} == {"FOR PRESENTATION"}
    assert {h.PhotometricInterpretation for h in headers} == {"MONOCHROME1", "MONOCHROME2"}
    assert {h.VOILUTFunction for h in headers} == {"SIGMOID", "LINEAR"}
    assert len({str(h.file_meta.TransferSyntaxUID) for h in headers}) == 4
    assert {h.ViewPosition for h in headers} == {""}
    assert {h.ViewCodeSequence[0].CodeValue for h in headers} == {"399162004", "399368009"}
    assert "PatientName" not in headers[0] or not str(headers[0].PatientName)
    assert (a / "CMMD_clinicaldata_revision.xlsx").is_file()
    assert generate_demo_dataset(tmp_path / "a", patients=3, size=(40, 32), seed=6) == a  # replaces a demo


def test_demo_generation_cancel_leaves_nothing(tmp_path):
    import threading

    from arfl_studio.data import GenerationCancelled, ensure_demo_dataset

    cancel = threading.Event()

    def progress(done, total):
        if done == 3:
            cancel.set()

    with pytest.raises(GenerationCancelled):
        generate_demo_dataset(tmp_path / "d", patients=3, size=(32, 32), progress=progress, cancel=cancel)
    assert not (tmp_path / "d").exists() and list(tmp_path.iterdir()) == []
    first = ensure_demo_dataset(tmp_path / "d", patients=2, size=(32, 32))
    stamp = (first / "demo_manifest.json").stat().st_mtime_ns
    assert ensure_demo_dataset(tmp_path / "d", patients=2, size=(32, 32)) == first
    assert (first / "demo_manifest.json").stat().st_mtime_ns == stamp  # generated once
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.docx").write_text("x")
    with pytest.raises(FileExistsError):
        generate_demo_dataset(tmp_path / "foreign", patients=1, size=(32, 32))


def test_findings_near_the_border_do_not_break_generation(tmp_path):
    # (160, 128) once put a calcification patch wholly outside the image.
    out = generate_demo_dataset(tmp_path / "demo", patients=40, size=(160, 128), seed=0)
    assert (out / "CMMD_clinicaldata_revision.xlsx").is_file()


@pytest.mark.parametrize(
    "section, message",
    [
        ({"fit": "squash"}, r"^fit must be one of stretch, pad, not 'squash'$"),
        ({"size": "big"}, r"^size must be rows and columns as whole numbers"),
        ({"size": [224, "x"]}, r"^size must be rows and columns as whole numbers"),
        ({"channels": 3.0}, r"^channels must be 1 or 3, not 3.0$"),
        ({"orient": "yes"}, r"^orient must be true or false"),
        ({"margin": float("nan")}, r"^margin must be a number in \[0, 0.25\]"),
        ({"threshold": "0.1"}, r"^threshold must be a number in \[0, 1\)"),
        ({"crop": "magic"}, r"^crop must be one of breast, breast-only, otsu, threshold, none"),
    ],
)
def test_a_bad_setting_gets_one_line_naming_it(section, message):
    # the experiment config prefixes these with "[preprocess]" (experiments/config.py check_preprocess)
    with pytest.raises(PreprocessSettingError, match=message) as info:
        PreprocessSettings(**section)
    assert "\n" not in str(info.value)
