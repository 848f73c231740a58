"""The Kanazawa et al. (2014) locally scale-invariant model."""

from __future__ import annotations

from torch import nn

from scalecnn.layers.kanazawa import KanazawaConv2d
from scalecnn.models.registry import register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet


def kanazawa_net(num_channels: int, num_classes: int, kernel_size: int) -> TwoStageNet:
    """``KanazawaConv2d(C,16,k) → ReLU → KanazawaConv2d(16,32,k) → ReLU → global max →
    Linear(32, classes)``; stage maps ``(B,16,58,58)`` and ``(B,32,52,52)`` for k = 7."""
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        KanazawaConv2d(num_channels, c1, kernel_size),
        KanazawaConv2d(c1, c2, kernel_size),
        num_classes,
    )


@register_model("kanazawa", traced=True)
def kanazawa(
    kernel_size: int, interpolation: str, num_channels: int, num_classes: int, **_: object
) -> nn.Module:
    """The kanazawa model (``interpolation`` is unused)."""
    return kanazawa_net(num_channels, num_classes, kernel_size)
