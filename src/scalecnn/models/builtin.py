"""Imports the modules that register the paper's eleven models, in the paper's order."""

from scalecnn.models import (  # noqa: F401
    standard,
    scale_pool,
    ensemble,
    spatial_transform,
    xu,
    kanazawa,
    steerable,
)

PAPER_MODELS = (
    "standard",
    "pixel_pool",
    "slice_pool",
    "energy_pool",
    "conv3d",
    "ensemble",
    "spatial_transform",
    "xu",
    "kanazawa",
    "hermite",
    "disco",
)
