"""The training settings form: paper presets A-I, a custom method, and run settings.

``methods()`` gives the queued :class:`MethodSettings`; ``config_dict()`` the
experiment configuration (the same sections as ``config.toml``).
"""

from __future__ import annotations


from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel,
    QListWidget, QListWidgetItem, QPushButton, QSlider, QSpinBox, QVBoxLayout, QWidget,
)

from arfl_studio.training import PAPER_ROWS, AttackSettings, MethodSettings, paper_method

BACKBONES = ("small_cnn", "resnet18", "vgg16", "vgg16_bn", "resnet50")
VARIANTS = ("paper", "batch-correlation", "signed")


def _dspin(lo, hi, value, decimals=4, step=None) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setSingleStep(step or 10 ** -decimals * 10)
    return box


def _spin(lo, hi, value) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


class SettingsForm(QWidget):
    changed = Signal()

    def __init__(self, devices: list[str] | None = None, parent=None):
        super().__init__(parent)
        # --- methods queue
        self.presets: dict[str, QCheckBox] = {}
        preset_box = QGroupBox("Methods to compare (paper rows)")
        grid = QGridLayout(preset_box)
        for i, row in enumerate(PAPER_ROWS):
            box = QCheckBox(f"{row['key']}  {row['name']}")
            box.setChecked(row["key"] in ("A", "B"))
            self.presets[row["key"]] = box
            grid.addWidget(box, i, 0)
        # --- custom method
        custom_box = QGroupBox("Custom method")
        custom = QFormLayout(custom_box)
        self.r_slider = QSlider(Qt.Orientation.Horizontal)
        self.r_slider.setRange(0, 20)
        self.r_slider.setValue(10)
        self.r_label = QLabel("0.50")
        self.r_slider.valueChanged.connect(lambda v: self.r_label.setText(f"{v / 20:.2f}"))
        r_row = QHBoxLayout()
        r_row.addWidget(self.r_slider, 1)
        r_row.addWidget(self.r_label)
        self.lambda_spin = _dspin(0, 1000, 10.0, 3, 0.5)
        self.variant_box = QComboBox()
        self.variant_box.addItems(VARIANTS)
        self.attack_box = QComboBox()
        self.attack_box.addItems(("pgd", "fgsm"))
        self.eps_spin = _dspin(0, 1, 0.01, 5, 0.001)
        self.steps_spin = _spin(1, 100, 7)
        self.add_custom = QPushButton("Add custom to queue")
        custom.addRow("r (clean share):", r_row)
        custom.addRow("λ (ARFL weight):", self.lambda_spin)
        custom.addRow("L_robust variant:", self.variant_box)
        custom.addRow("Training attack:", self.attack_box)
        custom.addRow("ε1:", self.eps_spin)
        custom.addRow("Attack steps:", self.steps_spin)
        custom.addRow(self.add_custom)
        self.custom_list = QListWidget()
        self.custom_list.setMaximumHeight(60)
        self.custom_list.setToolTip("Custom methods in the queue (double-click to remove)")
        self.custom_list.itemDoubleClicked.connect(lambda item: self.custom_list.takeItem(self.custom_list.row(item)))
        custom.addRow(self.custom_list)
        self._customs: list[MethodSettings] = []
        self.add_custom.clicked.connect(self.add_custom_method)
        # --- run settings
        run_box = QGroupBox("Run")
        run = QFormLayout(run_box)
        self.backbone_box = QComboBox()
        self.backbone_box.addItems(BACKBONES)
        self.size_spin = _spin(16, 1024, 64)
        self.size_spin.setSingleStep(16)
        self.epochs_spin = _spin(1, 1000, 3)
        self.batch_spin = _spin(1, 512, 16)
        self.lr_spin = _dspin(1e-6, 1.0, 1e-3, 6, 1e-4)
        self.folds_spin = _spin(2, 10, 2)
        self.device_box = QComboBox()
        self.device_box.addItem("auto")
        for name in devices or []:
            self.device_box.addItem(name)
        self.device_box.setToolTip("Detected: " + ", ".join(devices or ["cpu"]))
        self.eval_eps_spin = _dspin(0, 1, 1e-4, 5, 1e-4)
        run.addRow("Backbone:", self.backbone_box)
        run.addRow("Image size (px):", self.size_spin)
        run.addRow("Epochs:", self.epochs_spin)
        run.addRow("Batch size:", self.batch_spin)
        run.addRow("Learning rate:", self.lr_spin)
        run.addRow("Folds:", self.folds_spin)
        run.addRow("Device:", self.device_box)
        run.addRow("Validation ε2 (PGD):", self.eval_eps_spin)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(preset_box)
        layout.addWidget(custom_box)
        layout.addWidget(run_box)
        layout.addStretch(1)

    # ------------------------------------------------------------------
    def custom_method(self) -> MethodSettings:
        n = len(self._customs) + 1
        attack = AttackSettings(kind=self.attack_box.currentText(), eps=self.eps_spin.value(), steps=self.steps_spin.value())
        r = self.r_slider.value() / 20
        lam = self.lambda_spin.value()
        return MethodSettings(key=f"X{n}", name=f"Custom r={r:.2f} λ={lam:g} {attack.kind} ε1={attack.eps:g}",
                              mix_ratio=r, robust_weight=lam, robust_variant=self.variant_box.currentText(),
                              attack=attack).validate()

    def add_custom_method(self) -> MethodSettings:
        method = self.custom_method()
        self._customs.append(method)
        self.custom_list.addItem(QListWidgetItem(f"{method.key}: {method.name}"))
        return method

    def methods(self) -> list[MethodSettings]:
        attack = AttackSettings(kind=self.attack_box.currentText(), eps=self.eps_spin.value(), steps=self.steps_spin.value())
        chosen = [paper_method(k, robust_weight=self.lambda_spin.value(), attack=attack)
                  for k, box in self.presets.items() if box.isChecked()]
        keep = {self.custom_list.item(i).text().split(":")[0] for i in range(self.custom_list.count())}
        return chosen + [m for m in self._customs if m.key in keep]

    def set_values(self, **values) -> None:
        """Set fields by name (tests, the screenshot script, restored settings)."""
        boxes = {"backbone": self.backbone_box, "device": self.device_box}
        spins = {"image_size": self.size_spin, "epochs": self.epochs_spin, "batch_size": self.batch_spin,
                 "lr": self.lr_spin, "folds": self.folds_spin, "eval_eps": self.eval_eps_spin,
                 "robust_weight": self.lambda_spin, "eps": self.eps_spin, "steps": self.steps_spin}
        for name, value in values.items():
            if name == "methods":
                for key, box in self.presets.items():
                    box.setChecked(key in value)
            elif name in boxes:
                boxes[name].setCurrentText(str(value))
            elif name in spins:
                spins[name].setValue(value)
            else:
                raise KeyError(f"unknown setting {name!r}")

    def device(self) -> str:
        return self.device_box.currentText().split(" ")[0]

    def config_dict(self, data: dict) -> dict:
        """The experiment configuration for ``data`` (the [data] section)."""
        size = self.size_spin.value()
        return {
            "data": data,
            "preprocess": {"size": [size, size]},
            "model": {"backbone": self.backbone_box.currentText(), "pretrained": False},
            "training": {"epochs": self.epochs_spin.value(), "batch_size": self.batch_spin.value(),
                         "lr": self.lr_spin.value(), "device": self.device(), "workers": 0, "seed": 0},
            "cv": {"folds": self.folds_spin.value(), "seed": 0},
            "methods": [m.to_dict() for m in self.methods()],
            "evaluation": {"kind": "pgd", "eps": self.eval_eps_spin.value(), "steps": 7},
        }
