"""The eleven models of the study behind one registry.

>>> from scalecnn.models import build_model, list_models
>>> net = build_model("pixel_pool", kernel_size=7, interpolation="bicubic",
...                   num_channels=1, num_classes=36)
"""

from scalecnn.models.registry import (
    ModelSpec,
    build_model,
    get_spec,
    list_models,
    load_plugins,
    register_model,
    unregister_model,
)
from scalecnn.models.two_stage import TwoStageNet, compute_params

__all__ = [
    "ModelSpec",
    "TwoStageNet",
    "build_model",
    "compute_params",
    "get_spec",
    "list_models",
    "load_plugins",
    "register_model",
    "unregister_model",
]
