"""The standard CNN: two plain convolutions (no padding), the baseline of every figure."""

from __future__ import annotations

from torch import nn

from scalecnn.layers.fft import FastConv2d
from scalecnn.models.registry import register_model
from scalecnn.models.two_stage import STAGE_CHANNELS, TwoStageNet


def standard_net(
    num_channels: int, num_classes: int, kernel_size: int, padding: int = 0
) -> TwoStageNet:
    """``Conv2d(C,16,k) → ReLU → Conv2d(16,32,k) → ReLU → global max → Linear(32, classes)``.

    The convolutions are :class:`~scalecnn.layers.fft.FastConv2d`: ``nn.Conv2d`` with the
    faster CPU kernel and the sparse backward (same parameters and ``state_dict`` keys).
    """
    c1, c2 = STAGE_CHANNELS
    return TwoStageNet(
        FastConv2d(num_channels, c1, kernel_size, padding=padding),
        FastConv2d(c1, c2, kernel_size, padding=padding),
        num_classes,
    )


@register_model("standard", traced=True)
def standard(
    kernel_size: int, interpolation: str, num_channels: int, num_classes: int, **_: object
) -> nn.Module:
    """The standard model (``interpolation`` is unused)."""
    return standard_net(num_channels, num_classes, kernel_size)
