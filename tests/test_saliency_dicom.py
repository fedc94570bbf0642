"""``arfl-studio saliency ... --out PATH.dcm`` (issue 25 item 16): the overlay as a DICOM Secondary
Capture beside the source, named by the checkpoint's method and fold and the attack's ε."""

from __future__ import annotations

import pydicom

from arfl_studio.cli import main
from arfl_studio.data.dicom.secondary_capture import profile_violations
from arfl_studio.models.registry import ModelSpec, build_model, save_checkpoint


def test_saliency_cli_writes_a_secondary_capture_beside_the_source(tmp_path, capsys):
    from arfl_studio.data import generate_demo_dataset, scan_dataset

    root = generate_demo_dataset(tmp_path / "demo", patients=1, size=(128, 104), seed=0)
    dcm = str(scan_dataset(root).images[0].path)
    spec = ModelSpec(backbone="small_cnn", in_channels=1, width=4)
    checkpoint = save_checkpoint(tmp_path / "run" / "B" / "fold_1" / "model.pt", build_model(spec), spec)
    out = tmp_path / "delta.dcm"
    args = ["saliency", str(checkpoint), dcm, "--size", "32", "--method", "perturbation", "--eps", "0.02", "--steps", "2"]
    assert main([*args, "--out", str(out)]) == 0
    source, sc = pydicom.dcmread(dcm), pydicom.dcmread(out)
    assert sc.ReferencedImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert sc.StudyInstanceUID == source.StudyInstanceUID and sc.SOPInstanceUID != source.SOPInstanceUID
    assert (sc.Rows, sc.Columns, list(sc.PixelSpacing)) == (source.Rows, source.Columns, list(source.PixelSpacing))
    assert sc.SeriesDescription == "ARFL δ pgd · method B · fold 2 · ε 0.02"
    assert profile_violations(sc) == []
    # the model input is not the DICOM's grid: refused before any work
    capsys.readouterr()
    assert main([*args, "--space", "model", "--out", str(tmp_path / "model.dcm")]) == 2
    assert "--space native" in capsys.readouterr().err and not (tmp_path / "model.dcm").exists()
