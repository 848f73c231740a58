"""Imports the modules registering the paper's eleven models (ordered by ``PAPER_MODELS``)."""

from scalecnn.models import (  # noqa: F401
    ensemble,
    kanazawa,
    scale_pool,
    spatial_transform,
    standard,
    steerable,
    xu,
)
from scalecnn.study import PAPER_MODELS

__all__ = ["PAPER_MODELS"]
