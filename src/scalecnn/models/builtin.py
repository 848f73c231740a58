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
