"""STIR data: loader, file format, synthetic test files, Zenodo download and emoji generator.

``DATASETS`` (:data:`scalecnn.study.DATASETS`) maps each published file name to its layout
``(classes, instances, channels)``.
"""

from scalecnn.data.download import (
    ChecksumError,
    DownloadError,
    download_dataset,
    verify_local_file,
)
from scalecnn.data.generate import generate_emoji
from scalecnn.data.scenarios import ALL_SIZES, SCENARIOS, Scenario, get_scenario
from scalecnn.data.stir import STIRDataset
from scalecnn.data.stir_format import STIRFormatError, STIRInfo, validate_stir_file
from scalecnn.data.synthetic import write_synthetic_stir
from scalecnn.study import DATASETS

__all__ = [
    "ALL_SIZES",
    "DATASETS",
    "SCENARIOS",
    "ChecksumError",
    "DownloadError",
    "STIRDataset",
    "STIRFormatError",
    "STIRInfo",
    "Scenario",
    "download_dataset",
    "generate_emoji",
    "get_scenario",
    "validate_stir_file",
    "verify_local_file",
    "write_synthetic_stir",
]
