"""Experiment configuration: one TOML file describes a whole cross-validated run.

Sections (all optional except a data source)::

    [data]        root = "/data/CMMD" | demo = true | source = "synthetic" (exactly one); labels, layout, cache_dir,
                  label_map = {TRUE = 1, FALSE = 0} (label words beyond the layout's own),
                  cmmd_missing = "unlabeled" | "negative", birads_positive = "4,4a,4b,4c,5,6", birads_negative = "1,2"
    [preprocess]  orient, crop, size = [224, 224], fit = "stretch"|"pad", channels
    [model]       ModelSpec fields (backbone, pretrained, weights_path, fine_tune, dual_bn, ...)
    [training]    epochs, batch_size, lr, lr_schedule = "constant"|"cosine", optimizer, weight_decay, device,
                  amp, workers, seed, ...,
                  threshold = "youden" | {sensitivity = 0.9} | {specificity = 0.9} | {logit = 0.0},
                  threshold_holdout = 0 | 0.2 (share of training patients kept out to choose it on),
                  pos_weight = "auto" | "off" | N
    [cv]          folds = 5, seed, split = "patient-cv" | "official" (the dataset's own train/test split, one fold)
    [[methods]]   key = "A".."I" (a paper preset) and/or MethodSettings fields, [methods.attack]
    [evaluation]  the held-out adversarial AUC's attack (PGD, eps = 1e-4, ...); unit = "image"|"breast"|"patient"
    [sweep]       base = "F"; mix_ratio = [...], robust_weight = [...], eps = [...]

Every number has an allowed range, listed in ``config_checks.NUMBER_RANGES``; a value
outside it (``epochs = 1e20``) is refused naming the key, the value and the range.

``load_config`` accepts a path, TOML text's parsed dict, or a dict; ``to_toml``
writes a complete file (every default spelled out) that re-runs the same experiment.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import tomli_w

from arfl_studio.evaluation.units import UNITS
from arfl_studio.experiments.config_checks import (
    SEED_MAX,
    check_clamp,
    check_preprocess,
    check_fields,
    check_method_ranges,
    check_range,
    check_ranges,
    check_value,
    toml_value,
)
from arfl_studio.experiments.config_data import DATA_SOURCES, LAYOUT_OPTIONS, DataConfig  # noqa: F401 - re-exported
from arfl_studio.experiments.config_methods import PAPER_KEYS, check_key, check_method_types, parse_method
from arfl_studio.experiments.epoch_selection import SELECT_EPOCH
from arfl_studio.models.registry import ModelSpec
from arfl_studio.training.augment import AUGMENTS
from arfl_studio.training.losses import POS_WEIGHT_SETTINGS
from arfl_studio.training.patch_stage import PatchStageSettings
from arfl_studio.training.methods import AttackSettings, MethodSettings, SettingError, paper_method
from arfl_studio.training.threshold import ThresholdRule

OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
SWEEP_AXES = ("mix_ratio", "robust_weight", "eps")
CV_SPLITS = ("patient-cv", "official")


@dataclass
class TrainingConfig:
    epochs: int = 100
    batch_size: int = 16
    lr: float = 1e-4
    optimizer: str = "adam"
    lr_schedule: str = "constant"  # "cosine": lr * (1 + cos(pi * epoch / epochs)) / 2, set at each epoch's start
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    device: str = "auto"
    amp: bool = True  # CUDA only; attacks stay float32
    workers: int = 0  # DataLoader worker processes (spawn start method)
    seed: int = 0
    seeds: list[int] = field(default_factory=list)  # several training seeds per fold (overrides seed)
    eval_batch_size: int = 64
    validate_every: int = 1  # epochs between validation AUCs (0: never)
    validate_adversarial_every: int = 1  # epochs between adversarial validation AUCs (0: never)
    validation_attack_steps: int | None = None  # None: the [evaluation] attack's steps
    checkpoint_every: int = 1  # epochs between resume checkpoints
    keep_resume: bool = False  # keep resume.pt after a fold finished
    freeze_batchnorm: bool = False  # BN layers use (and keep) their running statistics while training
    dropout: bool = True  # False: dropout layers stay in eval mode (deterministic training)
    sync_batchnorm: bool = False  # DDP on CUDA: SyncBatchNorm
    threshold: str | dict = "youden"  # decision threshold rule, chosen on the training folds (training/threshold.py)
    # Fraction of each training fold's patients that do not train but choose the threshold: scores on
    # images a model has memorised are optimistic, so a threshold chosen on them can be too strict on
    # new images. 0 (default, the paper's protocol): every training patient trains, the threshold is
    # chosen on their images.
    threshold_holdout: float = 0.0
    pos_weight: str | float = "auto"  # BCE pos_weight: "auto" (negatives/positives of an imbalanced fold), "off", N
    # "last": the model after the last epoch (the paper). "validation-auc": the epoch whose model scores the
    # best AUC on the threshold_holdout patients (early stopping on an inner validation split; needs
    # threshold_holdout > 0), so the epoch and the threshold are chosen without looking at the test fold.
    select_epoch: str = "last"
    # "none" | "standard": vertical flip, small rotation/scale/shift, gamma and contrast on training batches
    # (training/augment.py), before any attack
    augment: str = "none"

    def seed_list(self) -> list[int]:
        """The training seeds: every method trains every fold once per seed."""
        return list(self.seeds) or [self.seed]

    def validate(self) -> None:
        check_ranges("[training]", asdict(self))
        if self.optimizer not in OPTIMIZERS:
            raise SettingError(f"[training] optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise SettingError(f"[training] lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if len(set(self.seeds)) != len(self.seeds) or not all(isinstance(x, int) for x in self.seeds):
            raise SettingError(f"[training] seeds must be distinct integers, got {self.seeds}")
        for seed in self.seeds:
            check_range("[training]", "seeds", seed, minimum=0, maximum=SEED_MAX)
        ThresholdRule.parse(self.threshold)
        if self.pos_weight not in POS_WEIGHT_SETTINGS and (
            isinstance(self.pos_weight, bool) or not isinstance(self.pos_weight, (int, float)) or not 0 < self.pos_weight <= 1e6
        ):
            raise SettingError(
                f"[training] pos_weight = {toml_value(self.pos_weight)} is not allowed: it must be "
                "\"auto\", \"off\" or a number > 0 and <= 1e6"
            )
        if self.augment not in AUGMENTS:
            raise SettingError(f"[training] augment must be one of {AUGMENTS}, got {self.augment!r}")
        if self.select_epoch not in SELECT_EPOCH:
            raise SettingError(f"[training] select_epoch must be one of {SELECT_EPOCH}, got {self.select_epoch!r}")
        if self.select_epoch == "validation-auc" and not self.threshold_holdout > 0:
            raise SettingError(
                "[training] select_epoch = \"validation-auc\" needs threshold_holdout > 0: the epoch "
                "is chosen on training patients held out of training, never on the test fold"
            )


@dataclass
class CVConfig:
    """How patients are split: ``folds``-fold patient-level cross-validation (the default), or
    ``split = "official"``: the dataset's published train/test split as one fold (CBIS-DDSM,
    VinDr-Mammo; :func:`arfl_studio.data.datasets.splits.official_split`)."""

    folds: int = 5
    seed: int = 0
    split: str = "patient-cv"

    @property
    def fold_count(self) -> int:
        """How many folds the run has: ``folds``, or 1 for the official split."""
        return 1 if self.split == "official" else self.folds

    def validate(self) -> None:
        if self.split not in CV_SPLITS:
            raise SettingError(f"[cv] split must be one of {CV_SPLITS}, got {self.split!r}")
        check_ranges("[cv]", asdict(self))


@dataclass
class EvaluationConfig:
    """The attack for the held-out adversarial AUC (the paper: PGD, eps_2 = 1e-4)."""

    kind: str = "pgd"
    eps: float = 1e-4
    steps: int = 7
    step_size: float | None = None
    random_start: bool = True
    restarts: int = 1
    clamp: list[float] | None = field(default_factory=lambda: [0.0, 1.0])
    seed: int = 0
    dsbn_oracle: bool = True  # also report the adversarial-BN route of DSBN models, labelled "oracle"
    unit: str = "image"  # AUC per "image" (the paper), "breast" or "patient" (evaluation/units.py)

    def validate(self) -> None:
        try:
            AttackSettings(kind=self.kind, eps=self.eps, steps=self.steps, step_size=self.step_size).validate()
        except SettingError as exc:
            raise SettingError(f"[evaluation] {exc}") from exc
        check_ranges("[evaluation]", asdict(self))
        check_clamp("[evaluation]", self.clamp)
        if self.unit not in UNITS:
            raise SettingError(f"[evaluation] unit must be one of {UNITS}, got {self.unit!r}")


@dataclass
class SweepConfig:
    """A grid over r, lambda and eps_1 applied to ``base``; each point is a cross-validated run."""

    base: str = "F"
    mix_ratio: list[float] = field(default_factory=list)
    robust_weight: list[float] = field(default_factory=list)
    eps: list[float] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.mix_ratio or self.robust_weight or self.eps)

    def axes(self) -> dict[str, list[float]]:
        return {name: list(getattr(self, name)) for name in SWEEP_AXES if getattr(self, name)}


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    data: DataConfig = field(default_factory=DataConfig)
    preprocess: dict[str, Any] = field(default_factory=lambda: {"orient": True, "crop": "breast", "size": [224, 224], "channels": 3})
    model: ModelSpec = field(default_factory=ModelSpec)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    methods: list[MethodSettings] = field(default_factory=lambda: [paper_method(k) for k in PAPER_KEYS])
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    patch_stage: PatchStageSettings = field(default_factory=PatchStageSettings)  # lesion patches first

    def validate(self) -> "ExperimentConfig":
        self.check_types()  # first: the range checks below compare values
        self.data.validate()
        self.training.validate()
        self.cv.validate()
        self.evaluation.validate()
        self.model.validate()
        self.patch_stage.validate()
        if self.training.epochs == 0 and not self.patch_stage.epochs:
            raise SettingError(
                "[training] epochs = 0 is allowed only with a [patch_stage] (the patch stage alone); otherwise train at least 1 epoch"
            )
        if self.patch_stage.epochs and self.model.backbone != "patch_fcn":
            raise SettingError(
                f"[patch_stage] trains a patch classifier: set [model] backbone = \"patch_fcn\" "
                f"(got {self.model.backbone!r}), or patch_stage epochs = 0"
            )
        keys = [m.key for m in self.methods]
        if len(set(keys)) != len(keys):
            raise SettingError(f"method keys must be unique, got {keys}")
        for method in self.methods:
            method.validate()
            check_key(method.key)
            check_method_ranges(method)
        check_ranges("[model]", self.model.to_dict())
        check_preprocess(self.preprocess)
        if self.sweep.active:
            for point in self.sweep_points():  # every point's method validates
                check_method_ranges(point["method"])
        return self

    def check_types(self) -> None:
        """Every value against its field's type, naming the section, key and value."""
        check_value("", "name", self.name, str)
        for section, obj in (
            ("[data]", self.data),
            ("[training]", self.training),
            ("[cv]", self.cv),
            ("[evaluation]", self.evaluation),
            ("[sweep]", self.sweep),
            ("[model]", self.model),
            ("[patch_stage]", self.patch_stage),
        ):
            check_fields(section, asdict(obj), type(obj))
        for method in self.methods:
            check_method_types(method.key, method.to_dict())

    # -- the runs this config describes --------------------------------------------------------
    def base_method(self) -> MethodSettings:
        for method in self.methods:
            if method.key == self.sweep.base:
                return method
        if self.sweep.base.upper() in PAPER_KEYS:
            return paper_method(self.sweep.base)
        raise SettingError(f"[sweep] base {self.sweep.base!r} is neither a listed method key nor a paper row A-I")

    def sweep_points(self) -> list[dict[str, Any]]:
        """Each grid point: ``{"point": P, "key": ..., "params": {...}, "method": MethodSettings}``."""
        if not self.sweep.active:
            return []
        base = self.base_method()
        axes = self.sweep.axes()
        points = []
        for index, values in enumerate(itertools.product(*axes.values())):
            params = dict(zip(axes, values))
            method = base
            label = []
            for name, value in params.items():
                if name == "eps":
                    method = replace(method, attack=replace(method.attack, eps=float(value)))
                    label.append(f"eps{value:g}")
                elif name == "mix_ratio":
                    method = replace(method, mix_ratio=float(value))
                    label.append(f"r{value:g}")
                else:
                    method = replace(method, robust_weight=float(value))
                    label.append(f"lam{value:g}")
            key = f"{base.key}_" + "_".join(label)
            method = replace(method, key=key, name=f"{base.name} ({', '.join(f'{k}={v:g}' for k, v in params.items())})")
            points.append({"point": index, "key": key, "params": params, "method": method.validate()})
        return points

    def runs(self) -> list[dict[str, Any]]:
        """What ``run_experiment`` trains: the sweep points if a sweep is set, else the methods."""
        if self.sweep.active:
            return self.sweep_points()
        return [{"point": None, "key": m.key, "params": {}, "method": m} for m in self.methods]

    def model_spec_for(self, method: MethodSettings) -> ModelSpec:
        """DSBN needs dual batch norms: switched on automatically for that scheme.

        VGG16 has no batch norm, so DSBN rows use VGG16-BN (as the paper's DSBN baseline
        must); its ImageNet weights come from the torch hub cache (a ``weights_path``
        named for VGG16 does not fit VGG16-BN and is not used).
        """
        if method.scheme != "dsbn":
            return self.model
        spec = replace(self.model, dual_bn=True)
        if spec.backbone == "vgg16":
            spec = replace(spec, backbone="vgg16_bn", weights_path=None)
        return spec

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {
            "name": self.name,
            "data": _drop_none(asdict(self.data)),
            "preprocess": dict(self.preprocess),
            "model": _drop_none(self.model.to_dict()),
            "training": _drop_none(asdict(self.training)),
            "cv": asdict(self.cv),
            "evaluation": _drop_none(asdict(self.evaluation)),
            "methods": [_drop_none(m.to_dict()) for m in self.methods],
        }
        if self.sweep.active:
            data["sweep"] = {"base": self.sweep.base, **self.sweep.axes()}
        if self.patch_stage.epochs:
            data["patch_stage"] = asdict(self.patch_stage)
        return data

    def to_toml(self) -> str:
        header = "# ARFL Studio experiment -- re-run with: arfl-studio run config.toml --out DIR\n"
        return header + tomli_w.dumps(self.to_dict())


def _drop_none(data: dict) -> dict:
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        out[key] = _drop_none(value) if isinstance(value, dict) else value
    return out


def _dataclass_from(cls, section: str, data: Mapping | None):
    if data is not None and not isinstance(data, Mapping):
        raise SettingError(f"[{section}] must be a table of settings, got {toml_value(data)}")
    data = dict(data or {})
    check_fields(f"[{section}]", data, cls)
    return cls(**data)


def _check_sweep_axes(sweep: Mapping) -> None:
    """A [sweep] must sweep something: one with only empty lists used to fall back to running rows A-I."""
    if any(isinstance(sweep.get(axis), list) and sweep[axis] for axis in SWEEP_AXES):
        return
    given = [f"{axis} = {toml_value(sweep[axis])}" for axis in SWEEP_AXES if axis in sweep]
    raise SettingError(
        f"[sweep] sweeps nothing ({', '.join(given) or 'no axis given'}): give at least one of "
        f"{', '.join(SWEEP_AXES)} as a non-empty list of values, or remove [sweep]"
    )


def load_config(source: str | Path | Mapping | ExperimentConfig) -> ExperimentConfig:
    """Read a config from a TOML path, a dict (as parsed from TOML) or pass one through."""
    if isinstance(source, ExperimentConfig):
        return source.validate()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise SettingError(f"config file {path} does not exist")
        with path.open("rb") as handle:
            try:
                data = tomllib.load(handle)
            except tomllib.TOMLDecodeError as exc:
                raise SettingError(f"{path} is not valid TOML: {exc}") from exc
    else:
        data = dict(source)
    known = {"name", "data", "preprocess", "model", "training", "cv", "methods", "evaluation", "sweep", "patch_stage"}
    unknown = set(data) - known
    if unknown:
        raise SettingError(f"unknown sections {sorted(unknown)}; allowed: {sorted(known)}")
    for section in known - {"name", "methods"}:
        if section in data and not isinstance(data[section], Mapping):
            raise SettingError(f"[{section}] must be a table of settings, got {toml_value(data[section])}")
    defaults = ExperimentConfig()
    preprocess = {**defaults.preprocess, **dict(data.get("preprocess", {}))}
    check_preprocess(preprocess)
    model_data = dict(data.get("model", {}))
    check_fields("[model]", model_data, ModelSpec)
    try:
        model = ModelSpec.from_dict(model_data) if model_data else ModelSpec()
    except ValueError as exc:
        raise SettingError(f"[model] {exc}") from exc
    methods_raw = data.get("methods")
    if methods_raw is not None and (not isinstance(methods_raw, list) or not methods_raw):
        # an empty list used to run all nine paper rows
        raise SettingError(
            f"methods = {toml_value(methods_raw)} is not allowed: list at least one method "
            "(a paper row letter A-I or a [[methods]] table), or leave methods out for rows A-I"
        )
    methods = [parse_method(m) for m in methods_raw] if methods_raw else defaults.methods
    if "sweep" in data:
        _check_sweep_axes(data["sweep"])
    evaluation = dict(data.get("evaluation", {}))
    check_value("", "name", data.get("name", defaults.name), str)
    config = ExperimentConfig(
        name=data.get("name", defaults.name),
        data=_dataclass_from(DataConfig, "data", data.get("data")),
        preprocess=preprocess,
        model=model,
        training=_dataclass_from(TrainingConfig, "training", data.get("training")),
        cv=_dataclass_from(CVConfig, "cv", data.get("cv")),
        methods=methods,
        evaluation=_dataclass_from(EvaluationConfig, "evaluation", evaluation),
        sweep=_dataclass_from(SweepConfig, "sweep", data.get("sweep")),
        patch_stage=_dataclass_from(PatchStageSettings, "patch_stage", data.get("patch_stage")),
    )
    return config.validate()
