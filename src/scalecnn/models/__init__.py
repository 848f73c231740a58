"""The models of the study behind one registry (:mod:`scalecnn.models.registry`).

Importing this package imports every model module below; each registers its
models with :func:`~scalecnn.models.registry.register_model`. A new model is
one new module here plus its name in this import list.

>>> from scalecnn.models import build_model, list_models
>>> net = build_model("pixel_pool", kernel_size=7, interpolation="bicubic",
...                   num_channels=1, num_classes=36)
"""

from scalecnn.models import (  # noqa: F401  (each model module registers its models)
    ensemble,
    gaussder,
    kanazawa,
    riesz,
    scale_pool,
    spatial_transform,
    standard,
    steerable,
    xu,
)
from scalecnn.models.registry import (
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    load_plugins,
    register_model,
    unregister_model,
)
from scalecnn.models.two_stage import TwoStageNet, stage_scales

__all__ = [
    "ModelSpec",
    "TwoStageNet",
    "build_model",
    "get_spec",
    "list_models",
    "load_plugins",
    "register_model",
    "stage_scales",
    "unregister_model",
]
