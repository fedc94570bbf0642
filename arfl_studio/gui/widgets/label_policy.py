"""The Dataset pane's label policies: the settings by which a layout turns its table into labels.

Shown only for the layouts that use them: CMMD's policy for a breast without a clinical-table
row, and the BI-RADS mapping of VinDr-Mammo and INbreast (which publish BI-RADS, not
pathology). A change emits ``changed``; the pane rescans (headers come from the scan cache, so
only the labels are derived again).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QGroupBox, QLabel, QLineEdit

from arfl_studio.data.datasets.cmmd import MISSING_ROW_POLICIES
from arfl_studio.data.datasets.layout_base import DEFAULT_BIRADS_NEGATIVE, DEFAULT_BIRADS_POSITIVE, birads_code

BIRADS_LAYOUTS = ("vindr", "inbreast")
TIPS = {
    "cmmd_missing": "CMMD's clinical table has a row per breast with a finding. A breast with no row is "
    "left unlabeled (not used; the default) or used as a negative (benign) breast.",
    "birads_positive": "VinDr-Mammo and INbreast give BI-RADS, not pathology: the categories counted as "
    "malignant (positive), comma-separated, e.g. 4,4a,4b,4c,5,6.",
    "birads_negative": "BI-RADS categories counted as benign (negative), comma-separated, e.g. 1,2. "
    "A category in neither list (3 by default) is excluded, with the reason.",
}


def _codes(text: str) -> list[str] | None:
    """The categories of a comma-separated list; None when one is not a BI-RADS category."""
    items = [part.strip() for part in text.split(",") if part.strip()]
    codes = [birads_code(item) for item in items]
    return None if any(c is None for c in codes) else [c for c in codes if c]


class LabelPolicyBox(QGroupBox):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__("Label rule", parent)
        self.cmmd_missing = QComboBox()
        self.cmmd_missing.addItems(MISSING_ROW_POLICIES)
        self.birads_positive = QLineEdit(",".join(DEFAULT_BIRADS_POSITIVE))
        self.birads_negative = QLineEdit(",".join(DEFAULT_BIRADS_NEGATIVE))
        self.problem = QLabel("")
        self.problem.setStyleSheet("color:#b00")
        self.problem.setWordWrap(True)
        form = QFormLayout(self)
        for text, name in (
            ("Breast without a table row (CMMD):", "cmmd_missing"),
            ("BI-RADS positive:", "birads_positive"),
            ("BI-RADS negative:", "birads_negative"),
        ):
            widget = getattr(self, name)
            widget.setToolTip(TIPS[name])
            label = QLabel(text)
            label.setToolTip(TIPS[name])
            form.addRow(label, widget)
        form.addRow(self.problem)
        self._form = form
        self._applied = self._values()
        self.cmmd_missing.activated.connect(lambda _i: self._edited())
        self.birads_positive.editingFinished.connect(self._edited)
        self.birads_negative.editingFinished.connect(self._edited)
        self.show_for(None)

    def show_for(self, layout: str | None) -> None:
        """Show the settings the layout uses (the box hides when it uses none)."""
        self._form.setRowVisible(self.cmmd_missing, layout == "cmmd")
        for widget in (self.birads_positive, self.birads_negative):
            self._form.setRowVisible(widget, layout in BIRADS_LAYOUTS)
        self.setVisible(layout == "cmmd" or layout in BIRADS_LAYOUTS)

    def options(self) -> dict[str, str]:
        """The policies in force, as ``scan_dataset(layout_options=...)`` takes them (an edit that
        is not valid is shown, not applied)."""
        return dict(self._applied)

    def _values(self) -> dict[str, str]:
        return {
            "cmmd_missing": self.cmmd_missing.currentText(),
            "birads_positive": self.birads_positive.text().strip(),
            "birads_negative": self.birads_negative.text().strip(),
        }

    def options_for(self, layout: str | None) -> dict[str, str]:
        """Only the policies ``layout`` uses (what a run's [data] section records)."""
        keys = ("cmmd_missing",) if layout == "cmmd" else ("birads_positive", "birads_negative") if layout in BIRADS_LAYOUTS else ()
        return {k: v for k, v in self._applied.items() if k in keys}

    def _edited(self) -> None:
        options = self._values()
        bad = [name for name in ("birads_positive", "birads_negative") if _codes(options[name]) is None]
        overlap = set(_codes(options["birads_positive"]) or ()) & set(_codes(options["birads_negative"]) or ())
        if bad or overlap:
            self.problem.setText(
                "Not BI-RADS categories (0-6, 4a, 4b, 4c; comma-separated): " + ", ".join(options[n] for n in bad)
                if bad
                else f"BI-RADS {', '.join(sorted(overlap))} cannot be both positive and negative"
            )
            return
        self.problem.setText("")
        if options != self._applied:
            self._applied = options
            self.changed.emit()
