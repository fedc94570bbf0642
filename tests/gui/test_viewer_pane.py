"""Viewer pane: a case through two models, overlays, adversarial toggle, linked views, tags, four views."""

import numpy as np
import pytest

from arfl_studio.gui.export import export_overlay
from arfl_studio.gui.panes.viewer_pane import ViewerPane
from arfl_studio.gui.widgets.image_view import MammogramView, blend

from .conftest import wait_task


def _held_out_record(run_dir):
    from arfl_studio.experiments import fold_records

    return fold_records(run_dir, 0)[1][0]


def test_case_with_overlays_and_two_models(qtbot, trained_run, tmp_path):
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1200, 700)
    pane.show()
    request = {"run_dir": str(trained_run), "method": "B", "fold": 0, "record": _held_out_record(trained_run), "attack": "pgd", "eps": 0.02}
    with qtbot.waitSignal(pane.overlay_ready, timeout=120_000):
        handle = pane.show_case(request)
    wait_task(qtbot, handle)
    assert (pane.model_a.currentText(), pane.model_b.currentText()) == ("B", "A")  # ARFL vs its base row
    assert pane.view_a.overlay_visible() and pane.view_b.overlay_visible()
    assert "P(malignant)" in pane.prediction.text() and "→" in pane.prediction.text()
    assert "at the stored threshold" in pane.prediction.text()  # the verdict against model.json's threshold
    clean = pane.view_a.gray.copy()
    pane.adversarial_box.setChecked(True)
    assert not np.array_equal(pane.view_a.gray, clean)  # the adversarial image is shown
    pane.overlay_box.setCurrentText("perturbation δ")
    lo, hi = pane.view_a.heat_levels
    assert lo == -hi and hi > 0 and pane.view_a.cmap == "CET-D1"
    pane.opacity.setValue(30)
    assert abs(pane.view_b.opacity() - 0.3) < 1e-6
    pane.overlay_box.setCurrentText("none")
    assert not pane.view_a.overlay_visible()
    pane.overlay_box.setCurrentText("saliency")
    # linked zoom/pan
    qtbot.wait(200)  # let the layout settle: a late resize re-fits an aspect-locked view
    pane.view_a.view.setRange(xRange=(2, 10), yRange=(2, 10), padding=0)

    def centre(view):
        return np.mean(view.view.viewRange()[0])

    qtbot.waitUntil(lambda: abs(centre(pane.view_b) - 6) < 0.5 and abs(centre(pane.view_a) - 6) < 0.5, timeout=10_000)
    # PHI hidden unless asked
    keywords = {r["keyword"] for r in pane.tag_model.rows}
    assert "Modality" in keywords and "PatientName" not in keywords
    pane.phi_box.setChecked(True)
    assert any(r["phi"] for r in pane.tag_model.rows) or "PatientName" not in {t["keyword"] for t in pane.tags}
    # the exported overlay is blended into pixels at the image's own size
    out = export_overlay(pane.view_a, tmp_path / "overlay.png")
    assert out.stat().st_size > 0 and pane.view_a.blended().shape[:2] == pane.view_a.gray.shape


def test_four_views_hanging(qtbot, demo_dir):
    from arfl_studio.data import scan_dataset

    scan = scan_dataset(demo_dir)
    pane = ViewerPane()
    qtbot.addWidget(pane)
    record = next(r for r in scan.images if r.laterality == "R" and r.view == "CC")
    patient_views = {f"{r.laterality}{r.view}" for r in scan.images if r.patient_id == record.patient_id}
    with qtbot.waitSignal(pane.views_ready, timeout=60_000):
        handle = pane.show_record(record, scan.images)
    wait_task(qtbot, handle)
    assert pane.stack.currentIndex() == 1
    for name, view in pane.hanging.items():
        assert (view.gray is not None) == (name in patient_views)
    pane.invert_box.setChecked(True)
    assert all(v.inverted for v in pane.hanging.values())


def test_blend_mixes_overlay_into_pixels():
    gray = np.zeros((4, 4), np.float32)
    heat = np.ones((4, 4), np.float32)
    assert blend(gray, None).max() == 0
    mixed = blend(gray, heat, "inferno", 0.5)
    assert mixed.shape == (4, 4, 3) and mixed.max() > 0
    assert blend(gray, None, invert=True).min() == 255


def test_view_window_level_keeps_user_levels(qtbot):
    view = MammogramView("x")
    qtbot.addWidget(view)
    view.set_image(np.random.rand(20, 16).astype(np.float32))
    view.set_levels(0.2, 0.6)
    view.set_image(np.random.rand(20, 16).astype(np.float32))  # e.g. the adversarial image of the same case
    assert view.gray_levels() == (0.2, 0.6)
    view.set_image(np.random.rand(20, 16).astype(np.float32), keep_levels=False)  # another case
    assert view.gray_levels() == (0.0, 1.0)


def test_case_opened_in_four_views_fills_every_layout(qtbot, trained_run):
    pane = ViewerPane()
    qtbot.addWidget(pane)
    pane.resize(1200, 700)
    pane.show()
    pane.mode_box.setCurrentIndex(1)  # the user is in the four-view layout when the Attack pane sends a case
    record = _held_out_record(trained_run)
    request = {"run_dir": str(trained_run), "method": "B", "fold": 0, "record": record, "attack": "pgd", "eps": 0.02}
    with qtbot.waitSignal(pane.overlay_ready, timeout=120_000):
        handle = pane.show_case(request)
    wait_task(qtbot, handle)
    assert pane.stack.currentIndex() == 1
    shown = {name for name, v in pane.hanging.items() if v.gray is not None}
    assert f"{record.laterality}{record.view}" in shown
    assert all(pane.hanging[name].overlay_visible() for name in shown)  # the model's map on every view
    assert not pane.model_b.isEnabled() and pane.model_a.isEnabled()  # one model in this layout
    pane.mode_box.setCurrentIndex(0)
    assert pane.view_a.gray is not None and pane.view_a.overlay_visible() and pane.model_b.isEnabled()


def test_flipped_case_numbers_equal_the_attack_table(qtbot, trained_run):
    """The viewer rebuilds the attack's own adversarial example (its kept δ), not a new attack."""
    from arfl_studio.evaluation.robustness import evaluate_robustness
    from arfl_studio.experiments import run_access

    model, _spec, records, dataset = run_access.held_out(trained_run, "B", 0)
    threshold = run_access_threshold(trained_run)
    report = evaluate_robustness(
        model,
        dataset,
        attack="pgd",
        eps=[0.05, 0.2],
        steps=3,
        records=records,
        device="cpu",
        probes=False,
        large_eps=None,
        threshold=threshold,
        batch_size=8,
    )
    eps = next((e for e in report.eps if report.flipped(e)), None)
    assert eps is not None, "no prediction flipped even at eps 0.2"
    case = report.flipped(eps)[0]
    assert case["delta_kept"]
    # what the Attack pane sends: its table row, plus the kept δ
    request = {
        "run_dir": str(trained_run),
        "method": "B",
        "fold": 0,
        "record": records[case["index"]],
        "attack": "pgd",
        "eps": eps,
        "case": dict(case, delta=report.case_delta(eps, case["index"])),
    }
    pane = ViewerPane()
    qtbot.addWidget(pane)
    with qtbot.waitSignal(pane.overlay_ready, timeout=120_000):
        handle = pane.show_case(request)
    wait_task(qtbot, handle)
    shown = pane.analysis["case"]["models"]["B"]
    assert shown["clean_prob"] == pytest.approx(case["clean_prob"], abs=1e-5)
    assert shown["adversarial_prob"] == pytest.approx(case["adversarial_prob"], abs=1e-5)
    text = pane.prediction.text()
    assert f"clean {case['clean_prob']:.3f} → adversarial {case['adversarial_prob']:.3f}" in text
    assert "attack's own δ" in text
    # the same case asked twice without a kept δ gives the same (seeded) numbers
    again = dict(request, case=dict(case))
    with qtbot.waitSignal(pane.overlay_ready, timeout=120_000):
        handle = pane.show_case(again)
    wait_task(qtbot, handle)
    first = pane.analysis["case"]["models"]["B"]["adversarial_prob"]
    with qtbot.waitSignal(pane.overlay_ready, timeout=120_000):
        handle = pane.show_case(again)
    wait_task(qtbot, handle)
    assert pane.analysis["case"]["models"]["B"]["adversarial_prob"] == first


def run_access_threshold(run_dir) -> float:
    from arfl_studio.experiments.run_access import load_fold_threshold

    return float(load_fold_threshold(run_dir, "B", 0).logit)
