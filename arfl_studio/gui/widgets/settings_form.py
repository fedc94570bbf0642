"""The training settings form: paper presets A-I, a custom method, and run settings.

``methods()`` gives the queued :class:`MethodSettings`; ``config_dict()`` the
experiment configuration (the same sections as ``config.toml``).
"""

from __future__ import annotations


from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from arfl_studio.experiments.config import CV_SPLITS, LR_SCHEDULES
from arfl_studio.experiments.headless_demo import (
    DEMO_ATTACK_STEPS,
    DEMO_BATCH,
    DEMO_EPOCHS,
    DEMO_FOLDS,
    DEMO_LR,
    DEMO_LR_SCHEDULE,
    DEMO_METHODS,
    DEMO_SIZE,
)
from arfl_studio.training import PAPER_ROWS, AttackSettings, MethodSettings, paper_method

BACKBONES = ("small_cnn", "resnet18", "vgg16", "vgg16_bn", "resnet50")
VARIANTS = ("paper", "batch-correlation", "signed")

# Short labels keep the nine rows in two columns at 1024 px; the tooltip has the whole story.
SHORT_NAMES = {
    "A": "Standard",
    "B": "Std + ARFL",
    "C": "Adversarial",
    "D": "Adv + ARFL",
    "E": "Dual adv.",
    "F": "Dual adv + ARFL",
    "G": "DSBN",
    "H": "TRADES",
    "I": "MIRST",
}
ROW_HELP = {
    "A": "Standard training: clean images only (r = 1), no L_robust.",
    "B": "Standard training + ARFL: clean images only (r = 1), loss L_cls + λ·L_robust.",
    "C": "Adversarial training (Madry): adversarial images only (r = 0), PGD with budget ε1.",
    "D": "Adversarial training + ARFL: adversarial images only (r = 0), loss L_cls + λ·L_robust.",
    "E": "Dual adversarial training: each batch is half clean, half adversarial (r = 0.5).",
    "F": "Dual adversarial training + ARFL (the paper's method): r = 0.5 and λ·L_robust on both parts.",
    "G": "DSBN: dual adversarial training with separate batch norms for clean and adversarial batches (tested through the clean BN).",
    "H": "TRADES: clean loss + β·KL(clean ‖ adversarial output), β = 6.",
    "I": "MIRST: multi-instance robust self-training; adversarial copies at several ε levels as extra data.",
}
TIPS = {
    "r": "r, the clean share of each batch's loss (Eq. 4/5): 1 = standard training, 0 = adversarial training "
    "(Madry), 0.5 = dual adversarial training. Any value in [0, 1].",
    "lambda": "λ, the weight of L_robust in L_overall = L_cls + λ·L_robust (Eq. 2). The paper uses 10 on "
    "mammograms, 0.5 on two-moon. Applies to the ARFL rows (B, D, F) and custom methods.",
    "variant": "Which L_robust: 'paper' is Eq. 1 as printed (−mean σ(|f·y|)); 'batch-correlation' takes the "
    "batch expectation of f·y per feature before |·| (our extension, the ρ-useful measure); "
    "'signed' keeps the sign of f·y (our extension).",
    "attack": "The attack that makes the adversarial training images: PGD (iterated, random start) or FGSM (one step).",
    "eps": "ε1, the training attack's budget in pixel units [0, 1] (L∞). The paper uses 0.01 on mammograms.",
    "steps": "PGD steps per training batch (the paper: 7; 3 by default here, to keep a CPU run short); the step "
    "size is 2.5·ε1/steps. FGSM ignores it.",
    "backbone": "The network: small_cnn trains on a CPU; vgg16 is the paper's (ImageNet weights, last conv "
    "layer and classifier fine-tuned).",
    "size": "Side of the square model input in pixels, after the breast crop.",
    "epochs": "Training epochs per fold (the paper: 100 on mammograms).",
    "batch": "Images per training batch.",
    "lr": "Learning rate of the optimizer.",
    "lr_schedule": "constant: the same learning rate every epoch; cosine: annealed from the learning rate "
    "towards 0 over the epochs, so training ends in small, stable steps.",
    "folds": "Cross-validation folds, split by patient; the same setting as the Dataset pane's fold preview.",
    "split": "patient-cv: cross-validation split by patient (the folds above). official: the dataset's own "
    "train/test split as one fold (CBIS-DDSM's *_train_set.csv / *_test_set.csv, VinDr-Mammo's split column); "
    "patients in both official sets are left out of training. Refused on data without an official split.",
    "device": "Where to train: auto picks a GPU when there is one.",
    "eval_eps": "ε2, the PGD budget used for the validation AUC on adversarial images (the paper: 1e-4).",
}


def _dspin(lo, hi, value, decimals=4, step=None) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setSingleStep(step or 10**-decimals * 10)
    return box


def _spin(lo, hi, value) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


RECIPES = ("form", "real_cpu")
RECIPE_TIP = (
    "form: the settings below (the demo's small CNN by default). real_cpu: the recipe for real films "
    "(resources/configs/real_cpu.toml: breast-only crop at 0.8 mm a pixel, in-breast intensity, a lesion "
    "patch classifier with hard negatives, the threshold on held-out training patients); it needs lesion "
    "marks (e.g. lesions.csv)."
)


class SettingsForm(QWidget):
    changed = Signal()

    def __init__(self, devices: list[str] | None = None, parent=None):
        super().__init__(parent)
        # --- methods queue
        self.presets: dict[str, QCheckBox] = {}
        preset_box = QGroupBox("Methods to compare (paper rows)")
        grid = QGridLayout(preset_box)
        grid.setVerticalSpacing(2)
        half = (len(PAPER_ROWS) + 1) // 2
        for i, row in enumerate(PAPER_ROWS):
            box = QCheckBox(f"{row['key']}  {SHORT_NAMES.get(row['key'], row['name'])}")
            box.setToolTip(f"<b>{row['key']}: {row['name']}</b><br>{ROW_HELP.get(row['key'], '')}")
            box.setChecked(row["key"] in DEMO_METHODS)  # the defaults are the headless demo's run
            self.presets[row["key"]] = box
            grid.addWidget(box, i % half, i // half)
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
        self.steps_spin = _spin(1, 100, DEMO_ATTACK_STEPS)
        self.add_custom = QPushButton("Add custom to queue")
        self.lambda_spin.setToolTip(TIPS["lambda"])
        self.variant_box.setToolTip(TIPS["variant"])
        self.attack_box.setToolTip(TIPS["attack"])
        self.eps_spin.setToolTip(TIPS["eps"])
        self.steps_spin.setToolTip(TIPS["steps"])
        self.r_slider.setToolTip(TIPS["r"])
        custom.addRow(self._tip_label("r (clean share):", "r"), r_row)
        custom.addRow(self._tip_label("λ (ARFL weight):", "lambda"), self.lambda_spin)
        custom.addRow(self._tip_label("L_robust variant:", "variant"), self.variant_box)
        custom.addRow(self._tip_label("Training attack:", "attack"), self.attack_box)
        custom.addRow(self._tip_label("ε1:", "eps"), self.eps_spin)
        custom.addRow(self._tip_label("Attack steps:", "steps"), self.steps_spin)
        custom.addRow(self.add_custom)
        self.custom_list = QListWidget()
        self.custom_list.setMaximumHeight(60)
        self.add_custom.setToolTip("Queue this custom method next to the ticked paper rows")
        self.custom_list.setToolTip("Custom methods in the queue (double-click to remove)")
        self.custom_list.itemDoubleClicked.connect(lambda item: self.custom_list.takeItem(self.custom_list.row(item)))
        custom.addRow(self.custom_list)
        self._customs: list[MethodSettings] = []
        self.add_custom.clicked.connect(self.add_custom_method)
        # --- run settings
        run_box = QGroupBox("Run")
        run = QFormLayout(run_box)
        self.recipe_box = QComboBox()
        self.recipe_box.addItems(RECIPES)
        self.recipe_box.setToolTip(RECIPE_TIP)
        self.recipe_box.currentTextChanged.connect(self._recipe_changed)
        run.addRow(QLabel("Recipe:"), self.recipe_box)
        self.backbone_box = QComboBox()
        self.backbone_box.addItems(BACKBONES)
        self.size_spin = _spin(16, 1024, DEMO_SIZE)
        self.size_spin.setSingleStep(16)
        self.epochs_spin = _spin(1, 1000, DEMO_EPOCHS)
        self.batch_spin = _spin(1, 512, DEMO_BATCH)
        self.lr_spin = _dspin(1e-6, 1.0, DEMO_LR, 6, 1e-4)
        self.schedule_box = QComboBox()
        self.schedule_box.addItems(LR_SCHEDULES)
        self.schedule_box.setCurrentText(DEMO_LR_SCHEDULE)
        self.folds_spin = _spin(2, 10, DEMO_FOLDS)
        self.split_box = QComboBox()
        self.split_box.addItems(CV_SPLITS)
        self.split_box.currentTextChanged.connect(lambda split: self.folds_spin.setEnabled(split == "patient-cv"))
        self.device_box = QComboBox()
        self.device_box.addItem("auto")
        for name in devices or []:
            self.device_box.addItem(name)
        self.device_box.setToolTip(TIPS["device"] + " Detected: " + ", ".join(devices or ["cpu"]))
        self.eval_eps_spin = _dspin(0, 1, 1e-4, 5, 1e-4)
        rows = (
            ("Backbone:", "backbone", self.backbone_box),
            ("Image size (px):", "size", self.size_spin),
            ("Epochs:", "epochs", self.epochs_spin),
            ("Batch size:", "batch", self.batch_spin),
            ("Learning rate:", "lr", self.lr_spin),
            ("LR schedule:", "lr_schedule", self.schedule_box),
            ("Folds:", "folds", self.folds_spin),
            ("Split:", "split", self.split_box),
            ("Device:", "device", self.device_box),
            ("Validation ε2 (PGD):", "eval_eps", self.eval_eps_spin),
        )
        for text, tip, widget in rows:
            if tip != "device":
                widget.setToolTip(TIPS[tip])
            run.addRow(self._tip_label(text, tip), widget)
        run.setVerticalSpacing(3)
        self.run_box = run_box
        self.preset_box = preset_box
        self.custom_box = custom_box
        # The custom method is folded away until asked for: the run settings then fit a
        # 700 px high window without scrolling.
        self.custom_toggle = QToolButton()
        self.custom_toggle.setText("Custom method (any r, λ, ε1) …")
        self.custom_toggle.setCheckable(True)
        self.custom_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.custom_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.custom_toggle.setToolTip(
            "Show the custom-method settings: r, λ, L_robust variant, training attack, "
            "ε1 and steps (λ and the attack also apply to the ticked paper rows)"
        )
        self.custom_toggle.toggled.connect(self.show_custom)
        custom_box.setVisible(False)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(preset_box)
        layout.addWidget(run_box)
        layout.addWidget(self.custom_toggle)
        layout.addWidget(custom_box)
        layout.addStretch(1)

    @staticmethod
    def _tip_label(text: str, tip: str) -> QLabel:
        label = QLabel(text)
        if tip in TIPS:
            label.setToolTip(TIPS[tip])
        return label

    def show_custom(self, shown: bool = True) -> None:
        self.custom_toggle.blockSignals(True)
        self.custom_toggle.setChecked(shown)
        self.custom_toggle.blockSignals(False)
        self.custom_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)
        self.custom_box.setVisible(shown)

    def setting_widgets(self) -> dict[str, QWidget]:
        """Every setting's widget by name (the help test checks each has a tooltip)."""
        return {
            "r": self.r_slider,
            "lambda": self.lambda_spin,
            "variant": self.variant_box,
            "attack": self.attack_box,
            "eps": self.eps_spin,
            "steps": self.steps_spin,
            "backbone": self.backbone_box,
            "size": self.size_spin,
            "epochs": self.epochs_spin,
            "batch": self.batch_spin,
            "lr": self.lr_spin,
            "lr_schedule": self.schedule_box,
            "folds": self.folds_spin,
            "split": self.split_box,
            "device": self.device_box,
            "eval_eps": self.eval_eps_spin,
            **{f"method {k}": box for k, box in self.presets.items()},
        }

    # ------------------------------------------------------------------
    def custom_method(self) -> MethodSettings:
        n = len(self._customs) + 1
        attack = AttackSettings(kind=self.attack_box.currentText(), eps=self.eps_spin.value(), steps=self.steps_spin.value())
        r = self.r_slider.value() / 20
        lam = self.lambda_spin.value()
        return MethodSettings(
            key=f"X{n}",
            name=f"Custom r={r:.2f} λ={lam:g} {attack.kind} ε1={attack.eps:g}",
            mix_ratio=r,
            robust_weight=lam,
            robust_variant=self.variant_box.currentText(),
            attack=attack,
        ).validate()

    def add_custom_method(self) -> MethodSettings:
        method = self.custom_method()
        self._customs.append(method)
        self.custom_list.addItem(QListWidgetItem(f"{method.key}: {method.name}"))
        return method

    def methods(self) -> list[MethodSettings]:
        attack = AttackSettings(kind=self.attack_box.currentText(), eps=self.eps_spin.value(), steps=self.steps_spin.value())
        chosen = [
            paper_method(k, robust_weight=self.lambda_spin.value(), attack=attack) for k, box in self.presets.items() if box.isChecked()
        ]
        keep = {self.custom_list.item(i).text().split(":")[0] for i in range(self.custom_list.count())}
        return chosen + [m for m in self._customs if m.key in keep]

    def set_values(self, **values) -> None:
        """Set fields by name (tests, the screenshot script, restored settings)."""
        boxes = {"backbone": self.backbone_box, "device": self.device_box, "lr_schedule": self.schedule_box, "split": self.split_box}
        spins = {
            "image_size": self.size_spin,
            "epochs": self.epochs_spin,
            "batch_size": self.batch_spin,
            "lr": self.lr_spin,
            "folds": self.folds_spin,
            "eval_eps": self.eval_eps_spin,
            "robust_weight": self.lambda_spin,
            "eps": self.eps_spin,
            "steps": self.steps_spin,
        }
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

    def offer_recipe(self, name: str) -> None:
        """Switch to a recipe (the window offers ``real_cpu`` when a non-demo dataset opens)."""
        self.recipe_box.setCurrentText(name)

    def _recipe_changed(self, name: str) -> None:
        # the recipe brings its own model, image size, epochs and learning rate: those fields are its
        for widget in (self.backbone_box, self.size_spin, self.epochs_spin, self.batch_spin, self.lr_spin, self.schedule_box):
            widget.setEnabled(name == "form")

    def device(self) -> str:
        return self.device_box.currentText().split(" ")[0]

    def config_dict(self, data: dict) -> dict:
        """The experiment configuration for ``data`` (the [data] section): the form's settings, or a
        bundled recipe's with the form's methods, folds, split, device and ε2."""
        if self.recipe_box.currentText() != "form":
            from arfl_studio.bundled import example_config
            from arfl_studio.experiments import load_config

            config = load_config(example_config(self.recipe_box.currentText())).to_dict()
            config["training"]["device"] = self.device()
            config["cv"]["folds"] = self.folds_spin.value()
            config["cv"]["split"] = self.split_box.currentText()
            config["evaluation"]["eps"] = self.eval_eps_spin.value()
            return {**config, "data": data, "methods": [m.to_dict() for m in self.methods()]}
        size = self.size_spin.value()
        return {
            "data": data,
            "preprocess": {"size": [size, size]},
            "model": {"backbone": self.backbone_box.currentText(), "pretrained": False},
            "training": {
                "epochs": self.epochs_spin.value(),
                "batch_size": self.batch_spin.value(),
                "lr": self.lr_spin.value(),
                "lr_schedule": self.schedule_box.currentText(),
                "device": self.device(),
                "workers": 0,
                "seed": 0,
            },
            "cv": {"folds": self.folds_spin.value(), "seed": 0, "split": self.split_box.currentText()},
            "methods": [m.to_dict() for m in self.methods()],
            "evaluation": {"kind": "pgd", "eps": self.eval_eps_spin.value(), "steps": 7},
        }
