"""Shared fixtures: tiny synthetic STIR files (3 classes, 2 instances) and the devices to test.

The checks in the helper module ``scale_props`` get pytest's assertion messages too."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from scalecnn.data import write_synthetic_stir

pytest.register_assert_rewrite("scale_props")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per pytest-xdist worker: `pytest -n N` runs N tests side by side on N cores
    torch.set_num_threads(1)


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


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=CUDA)])
def device(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each device the test should run on: the CPU always, CUDA where present.

    On CUDA, cuDNN's TF32 convolutions (on by default on Ampere and newer) are switched
    off so that the direct reference is computed in full float32.
    """
    if request.param != "cuda":
        yield request.param
        return
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield request.param
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
