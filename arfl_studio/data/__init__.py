"""Mammogram data: DICOM reading, dataset layouts and scan, preprocessing + cache,
patient-level splits, and the built-in synthetic demo dataset. No Qt here."""

from arfl_studio.data.preprocess.cache import default_cache_dir, refresh_content_hashes
from arfl_studio.data.preprocess.crop import CROP_METHODS, DEFAULT_CROP
from arfl_studio.data.demo.dataset import (
    DEFAULT_PATIENTS,
    DEFAULT_SIZE,
    GenerationCancelled,
    default_data_dir,
    default_demo_dir,
    ensure_demo_dataset,
    generate_demo_dataset,
)
from arfl_studio.data.dicom.deid import is_phi
from arfl_studio.data.dicom.reader import Mammogram, MammogramReadError, read_header, read_mammogram
from arfl_studio.data.datasets.layouts import ImageRecord, LayoutError, ScanResult, detect_layout, scan_dataset, verify_scan
from arfl_studio.data.datasets.reasons import CATEGORIES as REJECTION_CATEGORIES
from arfl_studio.data.dicom.shareable import shareable_path
from arfl_studio.data.datasets.views import view_family
from arfl_studio.data.preprocess.cache import PreprocessCache
from arfl_studio.data.preprocess.dataset import MammogramDataset, PreprocessReport, preprocess_records
from arfl_studio.data.preprocess.settings import PREPROCESS_VERSION, PreprocessSettingError, PreprocessSettings
from arfl_studio.data.preprocess.transform import compute_geometry, preprocess_file
from arfl_studio.data.datasets.splits import (
    PatientLeakError,
    check_no_patient_leak,
    load_splits,
    patient_folds,
    save_splits,
    train_indices,
)

__all__ = [
    "CROP_METHODS",
    "DEFAULT_CROP",
    "PREPROCESS_VERSION",
    "compute_geometry",
    "default_cache_dir",
    "refresh_content_hashes",
    "DEFAULT_PATIENTS",
    "DEFAULT_SIZE",
    "GenerationCancelled",
    "ImageRecord",
    "LayoutError",
    "Mammogram",
    "MammogramDataset",
    "MammogramReadError",
    "PatientLeakError",
    "PreprocessCache",
    "PreprocessReport",
    "PreprocessSettingError",
    "PreprocessSettings",
    "REJECTION_CATEGORIES",
    "ScanResult",
    "check_no_patient_leak",
    "default_data_dir",
    "default_demo_dir",
    "detect_layout",
    "ensure_demo_dataset",
    "generate_demo_dataset",
    "is_phi",
    "load_splits",
    "patient_folds",
    "preprocess_file",
    "preprocess_records",
    "read_header",
    "read_mammogram",
    "save_splits",
    "scan_dataset",
    "shareable_path",
    "train_indices",
    "verify_scan",
    "view_family",
]
