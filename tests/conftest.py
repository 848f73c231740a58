"""Shared fixtures: tiny synthetic STIR files (3 classes, 2 instances)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalecnn.data import write_synthetic_stir


@pytest.fixture(scope="session")
def tiny_stir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a gray synthetic STIR file: imgs (3, 48, 3, 2, 64, 64) uint8."""
    return write_synthetic_stir(
        tmp_path_factory.mktemp("stir") / "tiny.npz", num_classes=3, num_instances=2, channels=1
    )


@pytest.fixture(scope="session")
def tiny_stir_rgb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a colour synthetic STIR file: imgs (3, 48, 3, 2, 64, 64, 3) uint8."""
    return write_synthetic_stir(
        tmp_path_factory.mktemp("stir_rgb") / "tiny_rgb.npz",
        num_classes=3,
        num_instances=2,
        channels=3,
    )
