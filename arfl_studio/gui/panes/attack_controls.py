"""The Attack pane's controls, built onto the pane (as Qt Designer's ``setupUi`` does): the run or
checkpoint, method and fold, the attack and its ε sweep, steps and restarts, the sanity checks'
probes and budget, and the run/stop buttons with their progress."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QProgressBar, QPushButton, QSpinBox

from arfl_studio.experiments.attack_task import ATTACKS, DEFAULT_PROBE_QUERIES, LARGE_EPS

DEFAULT_EPS = "0.0001, 0.001, 0.01"
CHECK_TEXT = {
    "fgsm": "FGSM (one step: the iterative attack must beat it)",
    "pgd": "PGD (iterative: must beat FGSM)",
    "square": "Square (gradient-free: must not beat the white-box attack)",
}


def build_controls(pane: Any) -> tuple[QPushButton, QPushButton]:
    """Create the controls as attributes of ``pane``; returns the Run… and Checkpoint… browse buttons."""
    pane.run_edit = QLineEdit()
    pane.run_edit.setPlaceholderText("run folder (or a checkpoint .pt)")
    browse_run = QPushButton("Run…")
    browse_ckpt = QPushButton("Checkpoint…")
    pane.method_box = QComboBox()
    pane.fold_box = QComboBox()
    pane.attack_box = QComboBox()
    pane.attack_box.addItems(ATTACKS)
    pane.eps_edit = QLineEdit(DEFAULT_EPS)
    pane.eps_edit.setToolTip("one or more ε (pixel scale, [0, 1]) separated by commas")
    pane.steps_spin = QSpinBox()
    pane.steps_spin.setRange(1, 1000)
    pane.steps_spin.setValue(10)
    pane.restarts_spin = QSpinBox()
    pane.restarts_spin.setRange(1, 100)
    pane.restarts_spin.setValue(1)
    pane.size_spin = QSpinBox()
    pane.size_spin.setRange(16, 1024)
    pane.size_spin.setValue(64)
    pane.size_spin.setToolTip(
        "input size for a bare checkpoint that does not record its own "
        "(runs and newer checkpoints use the preprocessing they were trained on)"
    )
    pane.check_boxes = {name: QCheckBox(text) for name, text in CHECK_TEXT.items()}
    pane.large_box = QCheckBox(f"Large ε = {LARGE_EPS:g} (the attack must break the model there)")
    pane.large_box.setChecked(True)
    pane.queries_spin = QSpinBox()
    pane.queries_spin.setRange(10, 100000)
    pane.queries_spin.setSingleStep(100)
    pane.queries_spin.setValue(DEFAULT_PROBE_QUERIES)
    pane.queries_spin.setToolTip("queries per image for the Square probe: its cost grows linearly with them")
    pane.subset_spin = QSpinBox()
    pane.subset_spin.setRange(0, 100000)
    pane.subset_spin.setSpecialValueText("all")
    pane.subset_spin.setToolTip("run the sanity checks on the first N held-out images only (all: 0)")
    pane.plan_label = QLabel("")
    pane.plan_label.setWordWrap(True)
    pane.run_button = QPushButton("Run attack")
    pane.stop_button = QPushButton("Stop")
    pane.stop_button.setEnabled(False)
    pane.progress = QProgressBar()
    pane.progress.setRange(0, 1000)
    pane.progress.setValue(0)
    pane.stage_label = QLabel("")
    pane.stage_label.setWordWrap(True)
    return browse_run, browse_ckpt
