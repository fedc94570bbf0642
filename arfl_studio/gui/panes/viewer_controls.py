"""The Viewer's controls, built onto the pane (as Qt Designer's ``setupUi`` does): layout, space,
the two models, overlay, saliency method, colour map, opacity, threshold, window presets and the
check boxes, in two rows of label-over-control so the pane fits a 1024-px window."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from arfl_studio.gui.widgets.image_view import DEFAULT_THRESHOLD, SEQUENTIAL

OVERLAYS = ("none", "saliency", "perturbation δ")
SPACES = ("Native (as acquired)", "As the model sees it")


def build_controls(pane: Any) -> QGridLayout:
    """Create the controls as attributes of ``pane`` and return their grid."""
    pane.mode_box = QComboBox()
    pane.mode_box.addItems(("Two models", "Four views"))
    pane.space_box = QComboBox()
    pane.space_box.addItems(SPACES)
    pane.space_box.setToolTip("Native: the DICOM as acquired, maps mapped back through the crop, resize and flip")
    pane.model_a = QComboBox()
    pane.model_b = QComboBox()
    pane.overlay_box = QComboBox()
    pane.overlay_box.addItems(OVERLAYS)
    pane.saliency_box = QComboBox()
    pane.saliency_box.addItems(("gradient", "smoothgrad", "integrated-gradients"))
    pane.cmap_box = QComboBox()
    pane.cmap_box.addItems(SEQUENTIAL)
    pane.opacity = QSlider(Qt.Orientation.Horizontal)
    pane.opacity.setRange(0, 100)
    pane.opacity.setValue(55)
    pane.opacity.setMaximumWidth(110)
    pane.threshold_spin = QSpinBox()
    pane.threshold_spin.setRange(0, 90)
    pane.threshold_spin.setValue(round(100 * DEFAULT_THRESHOLD))
    pane.threshold_spin.setSuffix(" %")
    pane.threshold_spin.setToolTip(
        "The overlay is transparent below this share of its scale and fades in above it, so the anatomy under a cold region stays readable"
    )
    pane.preset_box = QComboBox()
    pane.preset_box.setToolTip(
        "Window presets: every window of the DICOM header, by its explanation, and the full range; right-drag on an image: "
        "horizontal = width, vertical = level; double-click resets"
    )
    pane.centre_spin, pane.width_spin = QDoubleSpinBox(), QDoubleSpinBox()
    for box, what in ((pane.centre_spin, "centre (level)"), (pane.width_spin, "width")):
        box.setRange(-1e7, 1e7)
        box.setMaximumWidth(84)  # the range's digits would widen the pane past a 1024-px window
        box.setKeyboardTracking(False)  # one change on Enter, not one per digit typed
        box.setPrefix("C " if box is pane.centre_spin else "W ")
        box.setToolTip(f"Window {what} in the image's own units after the modality LUT (rescale slope/intercept), as in the header")
    window = QWidget()  # presets and the two fields in one cell: the controls keep two rows
    window_row = QHBoxLayout(window)
    window_row.setContentsMargins(0, 0, 0, 0)
    for widget in (pane.preset_box, pane.centre_spin, pane.width_spin):
        window_row.addWidget(widget)
    pane.link_wl_box = QCheckBox("Link W/L")
    pane.link_wl_box.setChecked(True)
    pane.adversarial_box = QCheckBox("Adversarial image")
    pane.invert_box = QCheckBox("Invert")
    pane.lesion_box = QCheckBox("Lesions")
    pane.lesion_box.setChecked(True)
    pane.lesion_box.setToolTip("The dataset's lesion marks: malignant red, benign yellow, unknown cyan (drawn under the overlay)")
    pane.compute_button = QPushButton("Compute")
    pane.compute_button.setToolTip("Recompute predictions, δ and saliency for the chosen models")
    controls = QGridLayout()
    pane.model_a_label = QLabel("Left model")
    pairs = [
        (QLabel("Layout"), pane.mode_box),
        (QLabel("Space"), pane.space_box),
        (pane.model_a_label, pane.model_a),
        (QLabel("Right model"), pane.model_b),
        (QLabel("Overlay"), pane.overlay_box),
        (QLabel("Saliency"), pane.saliency_box),
        (QLabel("Colormap"), pane.cmap_box),
        (QLabel("Opacity"), pane.opacity),
        (QLabel("Show above"), pane.threshold_spin),
        (QLabel("Window"), window),
    ]
    pane.labels = {}  # widget -> its label (the window cell's under the preset box too)
    per_row = 5  # two rows of label-over-control: the pane fits a 1024-px window
    for i, (label, widget) in enumerate(pairs):
        row, col = 2 * (i // per_row), i % per_row
        controls.addWidget(label, row, col)
        controls.addWidget(widget, row + 1, col)
        pane.labels[widget] = label
    pane.labels[pane.preset_box] = pane.labels[window]
    controls.addWidget(pane.adversarial_box, 0, per_row)
    controls.addWidget(pane.invert_box, 1, per_row)
    controls.addWidget(pane.link_wl_box, 2, per_row)
    controls.addWidget(pane.compute_button, 3, per_row)
    controls.addWidget(pane.lesion_box, 0, per_row + 1)
    controls.setColumnStretch(per_row + 2, 1)

    return controls
